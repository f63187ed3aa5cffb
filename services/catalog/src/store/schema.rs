diesel::table! {
    resources (id) {
        id -> Uuid,
        jurisdiction -> Text,
        code -> Text,
        name -> Text,
        source_unit -> Text,
        sector -> Text,
        format -> Text,
        update_frequency -> Text,
        open_category -> Text,
        security_grade -> Text,
        quality_requirements -> Text,
        fields -> Jsonb,
        provenance -> Jsonb,
        state -> Text,
        version -> Integer,
        event_seq -> BigInt,
        authorizable -> Bool,
        not_authorizable_rule -> Nullable<Text>,
        rejection_reason -> Nullable<Text>,
        withdrawal_reason -> Nullable<Text>,
        pending_revision -> Nullable<Jsonb>,
        revision_note -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    resource_versions (resource_id, version) {
        resource_id -> Uuid,
        version -> Integer,
        content -> Jsonb,
        published_by -> Text,
        published_at -> Timestamptz,
    }
}

diesel::table! {
    registration_counters (jurisdiction, year) {
        jurisdiction -> Text,
        year -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    registrations (number) {
        number -> Text,
        jurisdiction -> Text,
        year -> Integer,
        seq -> BigInt,
        subject_kind -> Text,
        subject_id -> Uuid,
        subject_version -> Integer,
        registered_by -> Text,
        registered_at -> Timestamptz,
    }
}

diesel::table! {
    objections (id) {
        id -> Uuid,
        resource_id -> Uuid,
        field -> Nullable<Text>,
        jurisdiction -> Text,
        description -> Text,
        state -> Text,
        filed_by -> Text,
        filed_org -> Text,
        due_date -> Date,
        due_date_provisional -> Bool,
        deadline_rule -> Text,
        step_seq -> Integer,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    objection_steps (objection_id, seq) {
        objection_id -> Uuid,
        seq -> Integer,
        from_state -> Nullable<Text>,
        to_state -> Text,
        actor -> Text,
        actor_org -> Text,
        reason -> Text,
        at -> Timestamptz,
    }
}
