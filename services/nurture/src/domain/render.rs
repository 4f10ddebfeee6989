//! Templates: merge fields with defaults (`{{first_name|there}}`), and the links of an HTML body
//! that tracking rewrites; a whole mail composed with its tracking. Pure.

use super::token::{Claim, Signer, Target};

/// The merge fields a template may use.
pub const FIELDS: [&str; 5] = ["first_name", "last_name", "company_name", "title", "email"];

/// What the merge fields of one lead are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeValues {
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub title: String,
    pub email: String,
}

impl MergeValues {
    fn get(&self, field: &str) -> &str {
        match field {
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "company_name" => &self.company_name,
            "title" => &self.title,
            "email" => &self.email,
            _ => "",
        }
    }
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Field { name: &'a str, default: &'a str },
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a merge field opened with {{ is not closed with }}".to_owned())?;
        let inner = &after[..close];
        let (name, default) = inner.split_once('|').unwrap_or((inner, ""));
        let name = name.trim();
        if !FIELDS.contains(&name) {
            return Err(format!(
                "unknown merge field {name:?} (known: {})",
                FIELDS.join(", ")
            ));
        }
        pieces.push(Piece::Field { name, default });
        rest = &after[close + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Whether `template` is well-formed, or what is wrong with it.
pub fn check_template(template: &str) -> Result<(), String> {
    parse(template).map(|_| ())
}

/// `template` with its merge fields filled in (a field without a value takes its default);
/// `html` escapes the values. A malformed template (refused at validation) renders as it is.
pub fn render(template: &str, values: &MergeValues, html: bool) -> String {
    let Ok(pieces) = parse(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field { name, default } => {
                let value = values.get(name).trim();
                let value = if value.is_empty() {
                    default.trim()
                } else {
                    value
                };
                if html {
                    escape_html(value, &mut out);
                } else {
                    out.push_str(value);
                }
            }
        }
    }
    out
}

fn escape_html(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The `href="http(s)://…"` links of an HTML body, in order, and the body with the n-th link
/// replaced by `tracked(n)`. Only these links are ever redirected to.
pub fn track_links(html: &str, tracked: impl Fn(usize) -> String) -> (String, Vec<String>) {
    let mut out = String::with_capacity(html.len() + 256);
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        let start = at + "href=\"".len();
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('"') else {
            rest = after;
            break;
        };
        let url = &after[..end];
        if url.starts_with("http://") || url.starts_with("https://") {
            out.push_str(&tracked(links.len()));
            links.push(unescape_attr(url));
        } else {
            out.push_str(url);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    (out, links)
}

fn unescape_attr(url: &str) -> String {
    url.replace("&amp;", "&")
}

/// Where a mail's tracking points: the endpoint's base URL and the signed tokens of one touch.
pub struct Tracking<'a> {
    pub base_url: &'a str,
    pub signer: &'a Signer,
    pub tenant: &'a str,
    pub touch_id: &'a str,
}

impl Tracking<'_> {
    fn url(&self, path: &str, target: Target, suffix: &str) -> String {
        let token = self.signer.sign(&Claim {
            tenant: self.tenant.to_owned(),
            touch_id: self.touch_id.to_owned(),
            target,
        });
        format!(
            "{}/t/{path}/{token}{suffix}",
            self.base_url.trim_end_matches('/')
        )
    }

    pub fn unsubscribe_url(&self) -> String {
        self.url("u", Target::Unsubscribe, "")
    }
}

/// A mail ready to send: merge fields filled, links tracked, pixel and unsubscribe link added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub html: String,
    pub text: String,
    pub links: Vec<String>,
    pub unsubscribe_url: String,
}

pub fn compose(
    subject: &str,
    html_body: &str,
    text_body: &str,
    values: &MergeValues,
    tracking: &Tracking<'_>,
) -> Composed {
    let unsubscribe_url = tracking.unsubscribe_url();
    let (html, links) = if html_body.trim().is_empty() {
        (String::new(), Vec::new())
    } else {
        let rendered = render(html_body, values, true);
        let (mut html, links) = track_links(&rendered, |n| tracking.url("c", Target::Click(n), ""));
        let footer = format!(
            "<p style=\"font-size:12px;color:#666\"><a href=\"{unsubscribe_url}\">Unsubscribe</a></p><img src=\"{}\" width=\"1\" height=\"1\" alt=\"\">",
            tracking.url("o", Target::Open, ".gif")
        );
        match html.rfind("</body>") {
            Some(at) => html.insert_str(at, &footer),
            None => html.push_str(&footer),
        }
        (html, links)
    };
    let text = if text_body.trim().is_empty() {
        String::new()
    } else {
        format!(
            "{}\n\n--\nUnsubscribe: {unsubscribe_url}\n",
            render(text_body, values, false)
        )
    };
    Composed {
        subject: render(subject, values, false).replace(['\r', '\n'], " "),
        html,
        text,
        links,
        unsubscribe_url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_take_values_or_their_defaults() {
        let v = MergeValues {
            first_name: "Aiko".into(),
            company_name: "<Acme & Co>".into(),
            ..MergeValues::default()
        };
        assert_eq!(
            render("Hi {{first_name|there}}, {{ last_name |friend}}", &v, false),
            "Hi Aiko, friend"
        );
        assert_eq!(
            render("<b>{{company_name}}</b>", &v, true),
            "<b>&lt;Acme &amp; Co&gt;</b>"
        );
    }

    #[test]
    fn unknown_or_unclosed_fields_are_refused() {
        assert!(check_template("{{phone}}").unwrap_err().contains("phone"));
        assert!(check_template("Hi {{first_name").is_err());
        assert!(check_template("no fields at all").is_ok());
    }

    #[test]
    fn a_composed_mail_tracks_its_links_and_carries_pixel_and_unsubscribe() {
        let signer = Signer::new(b"k");
        let tracking = Tracking {
            base_url: "https://t.example.com/",
            signer: &signer,
            tenant: "acme",
            touch_id: "t1",
        };
        let v = MergeValues {
            first_name: "Aiko".into(),
            ..MergeValues::default()
        };
        let m = compose(
            "Hi {{first_name}}",
            r#"<html><body><a href="https://example.com/x">x</a></body></html>"#,
            "Hello {{first_name}}",
            &v,
            &tracking,
        );
        assert_eq!(m.subject, "Hi Aiko");
        assert_eq!(m.links, vec!["https://example.com/x"]);
        assert!(m.html.contains("https://t.example.com/t/c/"), "{}", m.html);
        assert!(!m.html.contains("href=\"https://example.com/x\""));
        assert!(m.html.contains("/t/o/") && m.html.contains(".gif"));
        assert!(m.html.find("/t/o/").unwrap() < m.html.find("</body>").unwrap());
        assert!(m.text.starts_with("Hello Aiko\n"));
        assert!(m.text.contains(&m.unsubscribe_url));
        assert!(m.unsubscribe_url.starts_with("https://t.example.com/t/u/"));
        let token = m.unsubscribe_url.rsplit('/').next().unwrap();
        assert_eq!(signer.verify(token).unwrap().target, Target::Unsubscribe);
    }

    #[test]
    fn only_web_links_are_tracked_and_remembered() {
        let html = r#"<a href="https://example.com/a?x=1&amp;y=2">A</a> <a href="mailto:x@y.z">m</a> <a href="http://b.example/">B</a>"#;
        let (out, links) = track_links(html, |n| format!("T{n}"));
        assert_eq!(
            links,
            vec!["https://example.com/a?x=1&y=2", "http://b.example/"]
        );
        assert_eq!(
            out,
            r#"<a href="T0">A</a> <a href="mailto:x@y.z">m</a> <a href="T1">B</a>"#
        );
    }
}
