//! What capture reads back about a lead.

use super::entities::{company, lead};

/// A lead with its company.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadView {
    pub lead: lead::Model,
    pub company: Option<company::Model>,
    /// Leads merged into this one.
    pub merged_ids: Vec<String>,
}
