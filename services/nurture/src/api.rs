//! nurture's gRPC edge: validate, call the store, convert. No SQL here.

use baton_proto::nurture::v1::{self as pb, nurture_service_server::NurtureService};
use baton_shared::{TenantId, Violations, fields::MAX_ID_LEN, paging::Page};
use tonic::{Request, Response, Status};

use crate::{
    convert::{
        definition_from_proto, enrollment_to_proto, pool_to_proto, segment_definition_from_proto,
        segment_to_proto, sequence_to_proto, settings_from_proto, settings_to_proto,
        touch_to_proto,
    },
    domain::{definition, segment, settings},
    store::Store,
};

pub struct Api {
    store: Store,
}

impl Api {
    pub fn new(store: Store) -> Self {
        Api { store }
    }
}

type Answer<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> Answer<T> {
    Ok(Response::new(t))
}

/// A sequence key from a request.
fn key(field: &str, raw: &str, v: &mut Violations) -> String {
    let k = raw.trim().to_owned();
    definition::check_key(field, &k, v);
    k
}

/// The key and version (0 = current) of a Get.
fn key_and_version(raw: &str, version: i32) -> Result<String, Status> {
    let mut v = Violations::new();
    let k = key("key", raw, &mut v);
    if version < 0 {
        v.add("version", "must not be negative");
    }
    v.into_result()?;
    Ok(k)
}

/// The name and definition of a create or update, validated whole.
fn sequence_input(
    name: &str,
    def: Option<&pb::SequenceDefinition>,
    v: &mut Violations,
) -> (String, definition::Definition) {
    let name = v.required("name", name, 200);
    let def = definition_from_proto(def, v);
    definition::validate(&def, v);
    (name, def)
}

/// The name and definition of a segment create or update, validated whole.
fn segment_input(
    name: &str,
    def: Option<&pb::SegmentDefinition>,
    v: &mut Violations,
) -> (String, segment::SegmentDefinition) {
    let name = v.required("name", name, 200);
    let def = segment_definition_from_proto(def, v);
    segment::validate(&def, v);
    (name, def)
}

#[tonic::async_trait]
impl NurtureService for Api {
    async fn create_segment(
        &self,
        request: Request<pb::CreateSegmentRequest>,
    ) -> Answer<pb::Segment> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let key = key("key", &req.key, &mut v);
        let (name, def) = segment_input(&req.name, req.definition.as_ref(), &mut v);
        v.into_result()?;
        let (row, def) = self
            .store
            .create_segment(&tenant, &key, &name, &def)
            .await?;
        ok(segment_to_proto(&row, &def))
    }

    async fn update_segment(
        &self,
        request: Request<pb::UpdateSegmentRequest>,
    ) -> Answer<pb::Segment> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let key = key("key", &req.key, &mut v);
        let (name, def) = segment_input(&req.name, req.definition.as_ref(), &mut v);
        if req.expected_version < 0 {
            v.add("expected_version", "must not be negative");
        }
        v.into_result()?;
        let (row, def) = self
            .store
            .update_segment(&tenant, &key, &name, &def, req.expected_version)
            .await?;
        ok(segment_to_proto(&row, &def))
    }

    async fn get_segment(&self, request: Request<pb::GetSegmentRequest>) -> Answer<pb::Segment> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let key = key_and_version(&req.key, req.version)?;
        let (row, def) = self.store.get_segment(&tenant, &key, req.version).await?;
        ok(segment_to_proto(&row, &def))
    }

    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Answer<pb::ListSegmentsResponse> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut v);
        v.into_result()?;
        let (rows, next_page_token) = self.store.list_segments(&tenant, page).await?;
        ok(pb::ListSegmentsResponse {
            segments: rows.iter().map(|(r, d)| segment_to_proto(r, d)).collect(),
            next_page_token,
        })
    }

    async fn preview_segment(
        &self,
        request: Request<pb::PreviewSegmentRequest>,
    ) -> Answer<pb::PreviewSegmentResponse> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut v);
        let key = req.key.trim().to_owned();
        if key.is_empty() == req.definition.is_none() {
            v.add("key", "give a segment's key or a definition, not both");
        }
        let def = segment_definition_from_proto(req.definition.as_ref(), &mut v);
        segment::validate(&def, &mut v);
        v.into_result()?;
        let def = if key.is_empty() {
            def
        } else {
            self.store.segment_definition(&tenant, &key).await?
        };
        let (count, lead_ids, next_page_token) =
            self.store.preview_segment(&tenant, &def, page).await?;
        ok(pb::PreviewSegmentResponse {
            count,
            lead_ids,
            next_page_token,
            as_of: Some(baton_shared::time::to_proto(baton_shared::time::now())),
        })
    }

    async fn create_sequence(
        &self,
        request: Request<pb::CreateSequenceRequest>,
    ) -> Answer<pb::Sequence> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let key = key("key", &req.key, &mut v);
        let (name, def) = sequence_input(&req.name, req.definition.as_ref(), &mut v);
        v.into_result()?;
        let (row, def) = self
            .store
            .create_sequence(&tenant, &key, &name, &def)
            .await?;
        ok(sequence_to_proto(&row, &def))
    }

    async fn update_sequence(
        &self,
        request: Request<pb::UpdateSequenceRequest>,
    ) -> Answer<pb::Sequence> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let key = key("key", &req.key, &mut v);
        let (name, def) = sequence_input(&req.name, req.definition.as_ref(), &mut v);
        if req.expected_version < 0 {
            v.add("expected_version", "must not be negative");
        }
        v.into_result()?;
        let (row, def) = self
            .store
            .update_sequence(&tenant, &key, &name, &def, req.expected_version)
            .await?;
        ok(sequence_to_proto(&row, &def))
    }

    async fn activate_sequence(
        &self,
        request: Request<pb::ActivateSequenceRequest>,
    ) -> Answer<pb::Sequence> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let key = key("key", &request.get_ref().key, &mut v);
        v.into_result()?;
        use pb::SequenceState as S;
        let (row, def) = self
            .store
            .set_sequence_state(
                &tenant,
                &key,
                &[S::Draft, S::Paused],
                S::Active,
                "already_active",
            )
            .await?;
        ok(sequence_to_proto(&row, &def))
    }

    async fn pause_sequence(
        &self,
        request: Request<pb::PauseSequenceRequest>,
    ) -> Answer<pb::Sequence> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let key = key("key", &request.get_ref().key, &mut v);
        v.into_result()?;
        use pb::SequenceState as S;
        let (row, def) = self
            .store
            .set_sequence_state(&tenant, &key, &[S::Active], S::Paused, "active_only")
            .await?;
        ok(sequence_to_proto(&row, &def))
    }

    async fn get_sequence(&self, request: Request<pb::GetSequenceRequest>) -> Answer<pb::Sequence> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let key = key_and_version(&req.key, req.version)?;
        let (row, def) = self.store.get_sequence(&tenant, &key, req.version).await?;
        ok(sequence_to_proto(&row, &def))
    }

    async fn list_sequences(
        &self,
        request: Request<pb::ListSequencesRequest>,
    ) -> Answer<pb::ListSequencesResponse> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut v);
        v.into_result()?;
        let (rows, next_page_token) = self.store.list_sequences(&tenant, page).await?;
        ok(pb::ListSequencesResponse {
            sequences: rows.iter().map(|(r, d)| sequence_to_proto(r, d)).collect(),
            next_page_token,
        })
    }

    async fn enroll(&self, request: Request<pb::EnrollRequest>) -> Answer<pb::Enrollment> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let request_id = v.required("request_id", &req.request_id, MAX_ID_LEN);
        let lead_id = v.required("lead_id", &req.lead_id, MAX_ID_LEN);
        let key = key("sequence_key", &req.sequence_key, &mut v);
        v.into_result()?;
        let (row, def) = self
            .store
            .enroll(&tenant, &request_id, &lead_id, &key)
            .await?;
        ok(enrollment_to_proto(&row, &def))
    }

    async fn exit_enrollment(
        &self,
        request: Request<pb::ExitEnrollmentRequest>,
    ) -> Answer<pb::Enrollment> {
        let tenant = TenantId::of(&request)?;
        let mut v = Violations::new();
        let id = v.required(
            "enrollment_id",
            &request.get_ref().enrollment_id,
            MAX_ID_LEN,
        );
        v.into_result()?;
        let (row, def) = self.store.exit_enrollment(&tenant, &id).await?;
        ok(enrollment_to_proto(&row, &def))
    }

    async fn list_enrollments(
        &self,
        request: Request<pb::ListEnrollmentsRequest>,
    ) -> Answer<pb::ListEnrollmentsResponse> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut v);
        v.into_result()?;
        let lead_id = Some(req.lead_id.trim()).filter(|l| !l.is_empty());
        let key = Some(req.sequence_key.trim()).filter(|k| !k.is_empty());
        let (rows, next_page_token) = self
            .store
            .list_enrollments(&tenant, page, lead_id, key)
            .await?;
        ok(pb::ListEnrollmentsResponse {
            enrollments: rows
                .iter()
                .map(|(e, d)| enrollment_to_proto(e, d))
                .collect(),
            next_page_token,
        })
    }

    async fn list_touches(
        &self,
        request: Request<pb::ListTouchesRequest>,
    ) -> Answer<pb::ListTouchesResponse> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let page = Page::parse(req.page_size, &req.page_token, &mut v);
        let lead_id = Some(req.lead_id.trim()).filter(|l| !l.is_empty());
        let enrollment_id = Some(req.enrollment_id.trim()).filter(|l| !l.is_empty());
        if lead_id.is_none() && enrollment_id.is_none() {
            v.add("lead_id", "lead_id or enrollment_id is required");
        }
        v.into_result()?;
        let (rows, next_page_token) = self
            .store
            .list_touches(&tenant, page, lead_id, enrollment_id)
            .await?;
        ok(pb::ListTouchesResponse {
            touches: rows.iter().map(touch_to_proto).collect(),
            next_page_token,
        })
    }

    async fn get_recycle_pool(
        &self,
        request: Request<pb::GetRecyclePoolRequest>,
    ) -> Answer<pb::RecyclePool> {
        let tenant = TenantId::of(&request)?;
        let pool = self.store.recycle_pool(&tenant).await?;
        ok(pool_to_proto(&pool))
    }

    async fn get_nurture_settings(
        &self,
        request: Request<pb::GetNurtureSettingsRequest>,
    ) -> Answer<pb::NurtureSettings> {
        let tenant = TenantId::of(&request)?;
        let s = self.store.settings(&tenant).await?;
        ok(settings_to_proto(&s))
    }

    async fn set_nurture_settings(
        &self,
        request: Request<pb::SetNurtureSettingsRequest>,
    ) -> Answer<pb::NurtureSettings> {
        let tenant = TenantId::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let next = settings_from_proto(req.settings.as_ref(), &mut v);
        settings::validate(&next, &mut v);
        if req.expected_version < 0 {
            v.add("expected_version", "must not be negative");
        }
        v.into_result()?;
        let s = self
            .store
            .set_settings(&tenant, &next, req.expected_version)
            .await?;
        ok(settings_to_proto(&s))
    }
}
