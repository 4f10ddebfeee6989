//! What capture reads back about a lead.

use super::entities::{company, lead};
use crate::error::Error;

/// A lead with its company.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadView {
    pub lead: lead::Model,
    pub company: Option<company::Model>,
    /// Leads merged into this one.
    pub merged_ids: Vec<String>,
}

/// What a capture did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOutcome {
    Created,
    /// The e-mail belongs to an existing lead.
    MatchedExisting,
    /// The request_id was seen before; `created` is what the first call did.
    Replayed {
        created: bool,
    },
}

impl CaptureOutcome {
    /// Whether the (first) call created the lead, as CaptureLead reports it.
    pub fn created(self) -> bool {
        matches!(
            self,
            CaptureOutcome::Created | CaptureOutcome::Replayed { created: true }
        )
    }
}

/// What one capture answers: the lead and what the capture did, or why it was refused.
pub type Captured = Result<(LeadView, CaptureOutcome), Error>;
