//! Every conversion of nurture between its stored rows and its proto messages.

use baton_proto::nurture::v1 as pb;
use baton_shared::time;

use crate::store::entities::enrollment;

pub fn enrollment_to_proto(e: &enrollment::Model) -> pb::Enrollment {
    pb::Enrollment {
        enrollment_id: e.enrollment_id.clone(),
        lead_id: e.lead_id.clone(),
        sequence_id: e.sequence_id.clone(),
        sequence_key: e.sequence_key.clone(),
        state: e.state,
        next_step: e.next_step,
        next_step_due_at: time::to_proto_opt(e.next_step_due_at),
        enrolled_at: Some(time::to_proto(e.enrolled_at)),
    }
}
