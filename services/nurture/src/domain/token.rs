//! Tracking tokens: what an open pixel, a tracked link or an unsubscribe link stands for, signed
//! with HMAC-SHA256 so that nobody can forge one or walk through the ids of other mails.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token (128 bits).
const MAC_LEN: usize = 16;
const SEP: char = '\u{1f}';

/// What a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Open,
    /// The n-th link of the mail.
    Click(usize),
    Unsubscribe,
}

/// A verified token: the tenant, the sent touch it belongs to, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub tenant: String,
    pub touch_id: String,
    pub target: Target,
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        mac.update(payload);
        mac
    }

    pub fn sign(&self, claim: &Claim) -> String {
        let target = match claim.target {
            Target::Open => "o".to_owned(),
            Target::Click(n) => format!("c{n}"),
            Target::Unsubscribe => "u".to_owned(),
        };
        let payload = format!("{target}{SEP}{}{SEP}{}", claim.tenant, claim.touch_id);
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
        )
    }

    /// The claim of a token this key signed; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claim> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != MAC_LEN {
            return None;
        }
        self.mac(&payload).verify_truncated_left(&tag).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.split(SEP);
        let target = match parts.next()? {
            "o" => Target::Open,
            "u" => Target::Unsubscribe,
            c => Target::Click(c.strip_prefix('c')?.parse().ok()?),
        };
        let tenant = parts.next()?.to_owned();
        let touch_id = parts.next()?.to_owned();
        if parts.next().is_some() {
            return None;
        }
        Some(Claim {
            tenant,
            touch_id,
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(target: Target) -> Claim {
        Claim {
            tenant: "acme".into(),
            touch_id: "0190-touch".into(),
            target,
        }
    }

    #[test]
    fn a_signed_token_verifies_to_its_claim() {
        let s = Signer::new(b"secret");
        for target in [Target::Open, Target::Click(3), Target::Unsubscribe] {
            let c = claim(target);
            assert_eq!(s.verify(&s.sign(&c)), Some(c));
        }
    }

    #[test]
    fn a_changed_forged_or_foreign_token_is_refused() {
        let s = Signer::new(b"secret");
        let token = s.sign(&claim(Target::Click(0)));
        let (payload, tag) = token.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode("c1\u{1f}acme\u{1f}0190-touch");
        assert_eq!(s.verify(&format!("{other}.{tag}")), None, "another link");
        assert_eq!(
            s.verify(&format!("{payload}.{}", &tag[..4])),
            None,
            "short MAC"
        );
        assert_eq!(Signer::new(b"other").verify(&token), None, "another key");
        assert_eq!(s.verify("garbage"), None);
    }
}
