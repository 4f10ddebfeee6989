//! Sequences that send: versioned definitions, enrolments the scheduler claims, touches, the
//! lead replica, settings and the activity outbox. The first sequences table held only
//! placeholder enrolments (nothing was ever sent), so it is replaced, not converted.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut ix = Index::create();
    ix.name(name).table(Alias::new(table));
    for c in cols {
        ix.col(Alias::new(*c));
    }
    if unique {
        ix.unique();
    }
    manager.create_index(ix.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for old in ["sequence_step", "enrollment", "sequence"] {
            manager
                .drop_table(Table::drop().table(Alias::new(old)).if_exists().to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("sequence")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("sequence_id"))
                    .col(string("tenant_id"))
                    .col(string("key"))
                    .col(integer("version"))
                    .col(string("name"))
                    .col(integer("state"))
                    .col(string("trigger"))
                    .col(string("lead_magnet"))
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_sequence_key_version",
            "sequence",
            &["tenant_id", "key", "version"],
            true,
        )
        .await?;
        index(
            manager,
            "ix_sequence_trigger",
            "sequence",
            &["tenant_id", "trigger", "state"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("enrollment")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("enrollment_id"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("sequence_id"))
                    .col(string("sequence_key"))
                    .col(integer("sequence_version"))
                    .col(integer("state"))
                    .col(integer("next_step"))
                    .col(timestamp_with_time_zone_null("next_step_due_at"))
                    .col(timestamp_with_time_zone_null("wake_at"))
                    .col(boolean("waits_on_branch"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(timestamp_with_time_zone("enrolled_at"))
                    .col(string("enrolled_by"))
                    .col(string_null("request_id"))
                    .col(integer("exit_reason"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .col(string_null("last_sent_touch_id"))
                    .col(timestamp_with_time_zone_null("last_sent_at"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_enrollment_due",
            "enrollment",
            &["state", "next_step_due_at"],
            false,
        )
        .await?;
        index(
            manager,
            "ix_enrollment_wake",
            "enrollment",
            &["state", "wake_at"],
            false,
        )
        .await?;
        index(
            manager,
            "ix_enrollment_lead",
            "enrollment",
            &["tenant_id", "lead_id"],
            false,
        )
        .await?;
        index(
            manager,
            "ux_enrollment_request",
            "enrollment",
            &["tenant_id", "request_id"],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("touch")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("touch_id"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("enrollment_id"))
                    .col(string("sequence_key"))
                    .col(string("step_id"))
                    .col(integer("kind"))
                    .col(timestamp_with_time_zone("at"))
                    .col(string("skip_reason"))
                    .col(string("bounce"))
                    .col(text("detail"))
                    .col(text("url"))
                    .col(string_null("machine_reason"))
                    .col(string("message_id"))
                    .col(timestamp_with_time_zone_null("retry_at"))
                    .col(text("links"))
                    .col(string_null("sent_touch_id"))
                    .col(integer_null("link_index"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_touch_lead",
            "touch",
            &["tenant_id", "lead_id", "kind", "at"],
            false,
        )
        .await?;
        index(
            manager,
            "ix_touch_enrollment",
            "touch",
            &["enrollment_id"],
            false,
        )
        .await?;
        index(manager, "ix_touch_sent", "touch", &["sent_touch_id"], false).await?;
        manager
            .create_table(
                Table::create()
                    .table("nurture_lead")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("email"))
                    .col(string("first_name"))
                    .col(string("last_name"))
                    .col(string("company_name"))
                    .col(string("title"))
                    .col(string("role"))
                    .col(string("department"))
                    .col(string("industry"))
                    .col(big_integer_null("employees"))
                    .col(big_integer_null("revenue_minor"))
                    .col(string("revenue_currency"))
                    .col(string("country"))
                    .col(string("region"))
                    .col(string("channel"))
                    .col(integer("rank"))
                    .col(big_integer("score"))
                    .col(string("time_zone"))
                    .col(boolean("opted_in"))
                    .col(boolean("unsubscribed"))
                    .col(boolean("do_not_contact"))
                    .col(boolean("hard_bounced"))
                    .col(boolean("erased"))
                    .col(string_null("merged_into"))
                    .col(string("lead_magnet"))
                    .col(integer("stage"))
                    .col(string("stage_reason"))
                    .col(timestamp_with_time_zone_null("stage_changed_at"))
                    .col(timestamp_with_time_zone_null("replied_at"))
                    .col(timestamp_with_time_zone_null("meeting_booked_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_nurture_lead",
            "nurture_lead",
            &["tenant_id", "lead_id"],
            true,
        )
        .await?;
        index(
            manager,
            "ix_nurture_lead_stage",
            "nurture_lead",
            &["tenant_id", "stage"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("nurture_settings")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(integer("version"))
                    .col(text("body"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_nurture_settings",
            "nurture_settings",
            &["tenant_id", "version"],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("activity_outbox")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string_uniq("idempotency_key"))
                    .col(string("lead_id"))
                    .col(integer("kind"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(string("subject"))
                    .col(text("url"))
                    .col(string_null("machine_reason"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(text("last_error"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_activity_outbox_next",
            "activity_outbox",
            &["next_attempt_at"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("lead_activity")
                    .col(big_pk_auto("seq"))
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(integer("kind"))
                    .col(integer("page_kind"))
                    .col(string("subject"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .to_owned(),
            )
            .await?;
        let lead_activity = ["tenant_id", "lead_id", "occurred_at"];
        index(
            manager,
            "ix_lead_activity",
            "lead_activity",
            &lead_activity,
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("segment")
                    .col(big_pk_auto("seq"))
                    .col(string_uniq("segment_id"))
                    .col(string("tenant_id"))
                    .col(string("key"))
                    .col(integer("version"))
                    .col(string("name"))
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        let segment = ["tenant_id", "key", "version"];
        index(manager, "ux_segment_key_version", "segment", &segment, true).await
    }
}
