//! E-mail facts: which activities reach a lead how (for unique-lead rates), and whether a lead's
//! address is deliverable (for the list size). Pure.

use baton_proto::capture::v1::ActivityKind;

/// How e-mail reached a lead, as stored in `email_lead_slot.kind`. Each lead counts once per kind
/// and slot; rates count each lead once per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    /// An e-mail was delivered to it.
    Delivered,
    /// An e-mail was delivered or bounced (sent).
    Sent,
    /// It opened an e-mail (counted at the delivery it opened).
    Opened,
    /// It clicked in one (counted at the delivery).
    Clicked,
    /// It unsubscribed (counted at the delivery).
    Unsubscribed,
    /// An e-mail to it bounced.
    Bounced,
    /// It converted (form, download, webinar registration, meeting) after a delivery (counted at
    /// the delivery, with the time between them).
    Converted,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Delivered => "delivered",
            Reach::Sent => "sent",
            Reach::Opened => "opened",
            Reach::Clicked => "clicked",
            Reach::Unsubscribed => "unsubscribed",
            Reach::Bounced => "bounced",
            Reach::Converted => "converted",
        }
    }
}

/// Where an activity's reach is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At the activity's own slot.
    Itself,
    /// At the slot of the lead's latest delivery before it.
    LatestDelivery,
}

/// The reaches an activity records, each with where it counts.
pub fn reaches(kind: ActivityKind) -> &'static [(Reach, At)] {
    use ActivityKind as K;
    match kind {
        K::EmailDelivered => &[(Reach::Delivered, At::Itself), (Reach::Sent, At::Itself)],
        K::EmailBounced => &[(Reach::Bounced, At::Itself), (Reach::Sent, At::Itself)],
        K::EmailOpened => &[(Reach::Opened, At::LatestDelivery)],
        K::EmailClicked => &[(Reach::Clicked, At::LatestDelivery)],
        K::EmailUnsubscribed => &[(Reach::Unsubscribed, At::LatestDelivery)],
        K::FormSubmitted | K::DocumentDownloaded | K::WebinarRegistered | K::MeetingBooked => {
            &[(Reach::Converted, At::LatestDelivery)]
        }
        _ => &[],
    }
}

/// The longest conversion window a tenant may set (days): conversions are recorded against the
/// latest delivery within it.
pub const MAX_CONVERSION_WINDOW_DAYS: f64 = 90.0;

/// E-mail state bits of a lead.
pub const OPTED_IN: i32 = 1;
pub const UNSUBSCRIBED: i32 = 2;
pub const DO_NOT_CONTACT: i32 = 4;
pub const BOUNCED: i32 = 8;
pub const ERASED: i32 = 16;
/// The lead is captured (an uncaptured lead has no address yet).
pub const KNOWN: i32 = 32;
/// The lead was merged into another: its address is the survivor's now.
pub const MERGED: i32 = 64;

/// Whether an address with `flags` is deliverable: known, opted in (where the tenant requires
/// it), not unsubscribed, not bounced, not do-not-contact, not erased.
pub fn deliverable(flags: i32, requires_opt_in: bool) -> bool {
    flags & KNOWN != 0
        && (!requires_opt_in || flags & OPTED_IN != 0)
        && flags & (UNSUBSCRIBED | DO_NOT_CONTACT | BOUNCED | ERASED | MERGED) == 0
}

/// The consent bits of a capture or an update (the others are kept).
pub fn with_consent(flags: i32, opted_in: bool, unsubscribed: bool, do_not_contact: bool) -> i32 {
    let mut f = flags & !(OPTED_IN | UNSUBSCRIBED | DO_NOT_CONTACT);
    if opted_in {
        f |= OPTED_IN;
    }
    if unsubscribed {
        f |= UNSUBSCRIBED;
    }
    if do_not_contact {
        f |= DO_NOT_CONTACT;
    }
    f
}

/// Whether an activity of `kind` changes a lead's e-mail state.
pub fn changes_flags(kind: ActivityKind) -> bool {
    matches!(
        kind,
        ActivityKind::EmailUnsubscribed | ActivityKind::EmailBounced | ActivityKind::ListSubscribed
    )
}

/// The bits an activity sets or clears.
pub fn after_activity(flags: i32, kind: ActivityKind) -> i32 {
    match kind {
        ActivityKind::EmailUnsubscribed => flags | UNSUBSCRIBED,
        ActivityKind::EmailBounced => flags | BOUNCED,
        ActivityKind::ListSubscribed => (flags | OPTED_IN) & !UNSUBSCRIBED,
        _ => flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_known_opted_in_clean_address_is_deliverable() {
        let fresh = KNOWN | OPTED_IN;
        assert!(deliverable(fresh, true));
        assert!(!deliverable(OPTED_IN, true), "not captured yet");
        assert!(!deliverable(KNOWN, true));
        assert!(deliverable(KNOWN, false), "no opt-in required");
        for bad in [UNSUBSCRIBED, DO_NOT_CONTACT, BOUNCED, ERASED, MERGED] {
            assert!(!deliverable(fresh | bad, false));
        }
        let unsub = after_activity(fresh, ActivityKind::EmailUnsubscribed);
        assert!(!deliverable(unsub, true));
        assert!(deliverable(
            after_activity(unsub, ActivityKind::ListSubscribed),
            true
        ));
        assert_eq!(
            with_consent(KNOWN | BOUNCED, true, false, false),
            KNOWN | BOUNCED | OPTED_IN
        );
    }
}
