//! One test per rule: inject exactly that misconfiguration into a freshly migrated database
//! and assert the guard reports exactly that rule, and nothing else. Every case of the
//! [`cases!`] table below is such a test; cases marked `=> 1` also run the built `rls-check`,
//! which must exit 1 naming the rule, and [`every_rule_has_an_injected_case`] fails when a rule
//! has no case in the table. Negative cases show each rule can stay quiet.

use rls_tenancy::guard::{Finding, GuardOptions, RuleId, Severity};
use rls_tenancy::{Result, TenancyDeclaration};

use super::{Fixture, options, rls_check_as_runtime, rules};

/// Injects `sql`, asserts the report's rules are exactly `{rule}`, and returns the fixture.
async fn injected(rule: RuleId, sql: &str) -> Result<Fixture> {
    injected_with(rule, sql, options()).await
}

/// As [`injected`], checking with `options`.
async fn injected_with(rule: RuleId, sql: &str, options: GuardOptions) -> Result<Fixture> {
    let mut fx = Fixture::migrated().await?;
    assert!(
        rules(&fx.check().await?).is_empty(),
        "the fresh database already has findings"
    );
    fx.inject(sql).await?;
    let report = fx.check_with(options).await?;
    assert_eq!(
        rules(&report),
        [rule].into(),
        "expected exactly {rule}:\n{report}"
    );
    for finding in report.findings() {
        assert_eq!(finding.severity, rule.severity());
        assert!(
            !finding.message.is_empty() && !finding.fix_sql.is_empty(),
            "{finding:?}"
        );
    }
    Ok(fx)
}

/// The built `rls-check` exits 1 on `fx`, naming `rule`.
async fn rls_check_refuses(fx: &Fixture, rule: RuleId) -> Result<()> {
    let run = rls_check_as_runtime(fx.db(), &[]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains(&format!("[{rule}]")), "{run:?}");
    Ok(())
}

/// Injects `sql` and asserts the guard reports nothing at all.
async fn stays_quiet(sql: &str) -> Result<Fixture> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(sql).await?;
    let report = fx.check().await?;
    assert!(
        report.findings().is_empty(),
        "expected no findings:\n{report}"
    );
    Ok(fx)
}

/// Injects `sql` into a migrated database and returns it with the report's only finding: one
/// cause, one finding.
async fn the_one_finding(sql: &str) -> Result<(Fixture, Finding)> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(sql).await?;
    let report = fx.check().await?;
    assert_eq!(
        report.findings().len(),
        1,
        "one cause, one finding:\n{report}"
    );
    let finding = report.findings()[0].clone();
    Ok((fx, finding))
}

/// Runs a finding's `fix_sql` as the superuser and asserts the guard then finds nothing.
async fn fix_fixes_it(fx: &mut Fixture, fix_sql: &str) -> Result<()> {
    fx.inject(fix_sql).await?;
    let fixed = fx.check().await?;
    assert!(fixed.findings().is_empty(), "the fix fixes it:\n{fixed}");
    Ok(())
}

/// The built-in declaration with `[[global_table]]` entries for `names`.
fn declaring_global(names: &[&str]) -> Result<TenancyDeclaration> {
    let mut text = include_str!("../../../policies/tenancy.toml").to_owned();
    for name in names {
        text.push_str(&format!("\n[[global_table]]\nname = \"{name}\"\n"));
    }
    Ok(TenancyDeclaration::parse(&text)?)
}

/// The guard's options for the reference declaration in the schema mode.
fn schema_options() -> GuardOptions {
    let decl = TenancyDeclaration::reference()
        .expect("declaration")
        .with_strategy(rls_tenancy::Strategy::Schema);
    GuardOptions::new(decl).min_server_versions(Vec::new())
}

/// Version floors above every release of every major: the server is always below them.
fn floors_above_every_release() -> Result<GuardOptions> {
    let floors = (10..=40)
        .map(|major| format!("{major}.9999").parse())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(options().min_server_versions(floors))
}

/// The table of cases: `name: Rule <- "sql";` is a test that injecting `sql` makes the guard
/// report exactly `Rule`; `with options` checks with other options than [`options`];
/// `=> 1` also runs the built `rls-check`, which must exit 1. It also defines [`COVERED`], the
/// rules the cases inject.
macro_rules! cases {
    ($($name:ident: $rule:ident <- $sql:expr $(, with $opts:expr)? $(=> $exit:literal)?;)*) => {
        /// Every rule some case of the table injects.
        const COVERED: &[RuleId] = &[$(RuleId::$rule,)*];
        $(
            #[tokio::test]
            async fn $name() -> Result<()> {
                let options = cases!(@options $($opts)?);
                let fx = injected_with(RuleId::$rule, $sql, options).await?;
                cases!(@exit fx, $rule $(, $exit)?);
                Ok(())
            }
        )*
    };
    (@options) => { options() };
    (@options $opts:expr) => { $opts };
    (@exit $fx:ident, $rule:ident) => { drop($fx); };
    (@exit $fx:ident, $rule:ident, $exit:literal) => {
        const { assert!($exit == 1, "rls-check exits 1 on a refusal") };
        rls_check_refuses(&$fx, RuleId::$rule).await?;
    };
}

const CANONICAL: &str = "account_id = nullif(current_setting('app.tenant_id', true), '')::bigint";

cases! {
    // Roles: attributes of the runtime role itself.
    a_superuser_runtime_role_is_refused: RoleSuperuser <- "ALTER ROLE {runtime} SUPERUSER" => 1;
    a_runtime_role_with_bypassrls_is_refused: RoleBypassRls <- "ALTER ROLE {runtime} BYPASSRLS";
    a_runtime_role_with_createrole_is_refused: RoleCreateRole <- "ALTER ROLE {runtime} CREATEROLE";
    a_runtime_role_with_createdb_is_refused: RoleCreateDb <- "ALTER ROLE {runtime} CREATEDB";
    a_runtime_role_with_replication_is_refused: RoleReplication <- "ALTER ROLE {runtime} REPLICATION";

    // Roles: what membership brings, directly and through an intermediate role.
    membership_in_a_superuser_role_is_refused: RoleMemberOfPrivileged <-
        "CREATE ROLE {top} SUPERUSER; GRANT {top} TO {runtime}" => 1;
    membership_in_a_createrole_role_is_refused: RoleMemberOfPrivileged <-
        "CREATE ROLE {top} CREATEROLE; GRANT {top} TO {runtime}";
    membership_in_pg_read_all_data_is_refused: RoleMemberOfPredefined <-
        "GRANT pg_read_all_data TO {runtime}" => 1;
    membership_in_pg_write_all_data_is_refused: RoleMemberOfPredefined <-
        "GRANT pg_write_all_data TO {runtime}";

    // Ownership.
    owning_the_database_is_refused: OwnsDatabase <- "ALTER DATABASE {db} OWNER TO {runtime}" => 1;
    owning_the_app_schema_is_refused: OwnsSchema <- "ALTER SCHEMA app OWNER TO {runtime}";
    owning_a_table_in_the_schema_is_refused: OwnsObject <-
        "CREATE TABLE app.notes_plain (body text); ALTER TABLE app.notes_plain OWNER TO {runtime}";
    owning_a_view_in_the_schema_is_refused: OwnsObject <-
        "CREATE VIEW app.one WITH (security_invoker) AS SELECT 1 AS one;
         ALTER VIEW app.one OWNER TO {runtime}";
    owning_a_sequence_in_the_schema_is_refused: OwnsObject <-
        "CREATE SEQUENCE app.counter; ALTER SEQUENCE app.counter OWNER TO {runtime}";
    owning_a_function_in_the_schema_is_refused: OwnsObject <-
        "CREATE FUNCTION app.one() RETURNS int LANGUAGE sql AS 'SELECT 1';
         ALTER FUNCTION app.one() OWNER TO {runtime}";
    owning_a_type_in_the_schema_is_refused: OwnsObject <-
        "CREATE TYPE app.mood AS ENUM ('ok'); ALTER TYPE app.mood OWNER TO {runtime}";

    // Privileges on schemas and the database.
    create_on_the_app_schema_is_refused: SchemaCreate <- "GRANT CREATE ON SCHEMA app TO {runtime}" => 1;
    create_on_the_public_schema_for_everyone_is_refused: SchemaCreate <-
        "GRANT CREATE ON SCHEMA public TO PUBLIC";
    temp_on_the_database_for_everyone_is_refused: DatabaseTemp <- "GRANT TEMP ON DATABASE {db} TO PUBLIC";
    create_on_the_database_is_refused: DatabaseCreate <- "GRANT CREATE ON DATABASE {db} TO {runtime}";

    // Privileges on tables and sequences.
    truncate_on_a_tenant_table_is_refused: TableTruncate <- "GRANT TRUNCATE ON app.users TO {runtime}" => 1;
    truncate_through_an_intermediate_role_is_refused: TableTruncate <-
        "CREATE ROLE {mid}; GRANT TRUNCATE ON app.subtasks TO {mid}; GRANT {mid} TO {runtime}";
    references_on_a_column_is_refused: TableReferences <- "GRANT REFERENCES (email) ON app.users TO {runtime}";
    trigger_for_everyone_is_refused: TableTrigger <- "GRANT TRIGGER ON app.tasks TO PUBLIC";
    update_on_a_sequence_is_refused: SequenceUpdate <- "GRANT UPDATE ON SEQUENCE app.users_id_seq TO {runtime}";
    a_privilege_with_grant_option_is_refused: GrantOption <-
        "GRANT SELECT ON app.projects TO {runtime} WITH GRANT OPTION" => 1;

    // The registry: routing columns only.
    reading_a_registry_column_that_is_not_routing_data_is_refused: RegistryPrivilege <-
        "GRANT SELECT (name) ON app.accounts TO {runtime}" => 1;
    reading_every_registry_column_is_refused: RegistryPrivilege <- "GRANT SELECT ON app.accounts TO PUBLIC";
    writing_the_registry_is_refused: RegistryPrivilege <- "GRANT INSERT ON app.accounts TO {runtime}";
    writing_the_domains_table_is_refused: RegistryPrivilege <-
        "GRANT INSERT, UPDATE ON app.domains TO {runtime}";

    // Row-level security and policies.
    a_tenant_table_without_row_level_security_is_refused: RlsDisabled <-
        "ALTER TABLE app.tasks DISABLE ROW LEVEL SECURITY" => 1;
    a_tenant_table_without_forced_row_level_security_is_refused: RlsNotForced <-
        "ALTER TABLE app.tasks NO FORCE ROW LEVEL SECURITY";
    a_tenant_table_without_a_policy_is_refused: PolicyMissing <-
        "DROP POLICY tenant_isolation ON app.tasks";
    a_permissive_using_true_policy_is_refused: PolicyNotCanonical <-
        "CREATE POLICY open_all ON app.tasks USING (true) WITH CHECK (true)" => 1;
    a_policy_with_an_or_escape_is_refused: PolicyNotCanonical <-
        "ALTER POLICY tenant_isolation ON app.tasks
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint
                  OR current_setting('app.tenant_id', true) IS NULL)";
    a_policy_that_opens_up_when_the_variable_is_unset_is_refused: PolicyNotCanonical <-
        "ALTER POLICY tenant_isolation ON app.tasks
           USING (CASE WHEN current_setting('app.tenant_id', true) IS NULL THEN true
                       ELSE account_id = nullif(current_setting('app.tenant_id', true), '')::bigint END)";
    a_policy_whose_with_check_lets_any_row_in_is_refused: PolicyNotCanonical <-
        "ALTER POLICY tenant_isolation ON app.tasks WITH CHECK (true)";
    an_insert_policy_without_with_check_is_refused: PolicyNotCanonical <-
        "CREATE POLICY insert_any ON app.tasks FOR INSERT";
    a_policy_on_another_variable_is_refused: PolicyNotCanonical <-
        "ALTER POLICY tenant_isolation ON app.tasks
           USING (account_id = nullif(current_setting('app.other_tenant', true), '')::bigint)";
    a_restrictive_policy_that_covers_only_select_is_refused: PolicyMixLeaks <-
        "CREATE POLICY tenant_select ON app.tasks AS RESTRICTIVE FOR SELECT
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint);
         CREATE POLICY open_all ON app.tasks USING (true) WITH CHECK (true)" => 1;
    a_using_true_policy_for_a_role_the_runtime_role_can_become_is_refused: PolicyNotCanonical <-
        "CREATE ROLE {mid}; CREATE POLICY open_to_mid ON app.tasks TO {mid} USING (true);
         GRANT {mid} TO {runtime}";
    a_tenant_table_with_only_restrictive_policies_is_refused: PolicyNotForRole <-
        "DROP POLICY tenant_isolation ON app.tasks;
         CREATE POLICY tenant_only ON app.tasks AS RESTRICTIVE
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)
           WITH CHECK (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)" => 1;
    a_tenant_policy_for_another_role_is_refused: PolicyNotForRole <-
        "CREATE ROLE {mid}; ALTER POLICY tenant_isolation ON app.tasks TO {mid}" => 1;
    a_tenant_table_whose_policies_cover_only_select_is_refused: PolicyNotForRole <-
        "DROP POLICY tenant_isolation ON app.tasks;
         CREATE POLICY tenant_read ON app.tasks FOR SELECT
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)";
    a_policy_without_with_check_warns: PolicyImplicitWithCheck <-
        "DROP POLICY tenant_isolation ON app.tasks;
         CREATE POLICY tenant_isolation ON app.tasks
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)";
    a_readable_copy_of_a_tenant_table_in_another_schema_is_refused: RlsDisabled <-
        "CREATE SCHEMA archive; GRANT USAGE ON SCHEMA archive TO {runtime};
         CREATE TABLE archive.users AS SELECT * FROM app.users;
         GRANT SELECT ON archive.users TO {runtime}" => 1;

    // Views and functions.
    a_readable_view_that_is_not_security_invoker_is_refused: ViewNotSecurityInvoker <-
        "CREATE VIEW app.all_emails AS SELECT account_id, email FROM app.users;
         GRANT SELECT ON app.all_emails TO {runtime}" => 1;
    an_executable_security_definer_function_is_refused: SecurityDefinerFunction <-
        "CREATE FUNCTION app.count_all_users() RETURNS bigint LANGUAGE sql SECURITY DEFINER
           AS 'SELECT count(*) FROM app.users'" => 1;
    a_readable_materialized_view_over_tenant_data_is_refused: MaterializedViewReadable <-
        "CREATE MATERIALIZED VIEW app.user_counts AS SELECT account_id, count(*) FROM app.users GROUP BY 1;
         GRANT SELECT ON app.user_counts TO {runtime}" => 1;
    a_materialized_view_reading_tenant_data_through_a_view_in_public_is_refused: MaterializedViewReadable <-
        "CREATE VIEW public.emails WITH (security_invoker) AS SELECT email FROM app.users;
         CREATE MATERIALIZED VIEW public.email_list AS SELECT * FROM public.emails;
         GRANT SELECT ON public.email_list TO PUBLIC";
    a_security_definer_trigger_function_nobody_may_execute_is_refused: SecurityDefinerFunction <-
        "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
           AS $$BEGIN RETURN NEW; END$$;
         REVOKE EXECUTE ON FUNCTION app.stamp() FROM PUBLIC;
         CREATE TRIGGER tasks_stamp BEFORE INSERT ON app.tasks FOR EACH ROW EXECUTE FUNCTION app.stamp()" => 1;
    a_leakproof_function_outside_pg_catalog_is_refused: LeakproofFunction <-
        "CREATE FUNCTION public.shout(text) RETURNS boolean LANGUAGE plpgsql LEAKPROOF
           AS $$BEGIN RAISE EXCEPTION 'saw %', $1; END$$" => 1;

    // Default privileges.
    default_truncate_on_new_tables_is_refused: DefaultPrivilege <-
        "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} IN SCHEMA app GRANT TRUNCATE ON TABLES TO {runtime}" => 1;
    default_update_on_new_sequences_for_everyone_is_refused: DefaultPrivilege <-
        "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} GRANT UPDATE ON SEQUENCES TO PUBLIC";
    default_create_on_new_schemas_is_refused: DefaultPrivilege <-
        "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} GRANT CREATE ON SCHEMAS TO {runtime}";
    default_select_on_new_tables_for_everyone_is_refused: DefaultPrivilege <-
        "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC" => 1;
    default_grant_option_is_refused: DefaultPrivilege <-
        "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} IN SCHEMA app GRANT SELECT ON TABLES TO {runtime} WITH GRANT OPTION";

    // The tenant variable preset outside a transaction.
    a_tenant_preset_for_the_role_is_refused: TenantVariablePreset <-
        "ALTER ROLE {runtime} SET app.tenant_id = '1'" => 1;
    a_tenant_preset_for_the_database_is_refused: TenantVariablePreset <-
        "ALTER DATABASE {db} SET app.tenant_id = '1'";
    a_tenant_preset_for_the_role_in_the_database_is_refused: TenantVariablePreset <-
        "ALTER ROLE {runtime} IN DATABASE {db} SET app.tenant_id = '1'";

    // The schema mode (section 4 of issue 11): no search_path preset, and the ownership,
    // CREATE and row-level security rules hold in tenant schemas and the shared one alike.
    a_search_path_preset_for_the_role_is_refused_in_the_schema_mode: SearchPathPreset <-
        "ALTER ROLE {runtime} SET search_path = tenant_a, app", with schema_options();
    a_search_path_preset_for_the_database_is_refused_in_the_schema_mode: SearchPathPreset <-
        "ALTER DATABASE {db} SET search_path = tenant_a, app", with schema_options();
    a_search_path_preset_for_the_role_in_the_database_is_refused_in_the_schema_mode: SearchPathPreset <-
        "ALTER ROLE {runtime} IN DATABASE {db} SET search_path = tenant_a", with schema_options();
    a_tenant_schema_owned_by_the_runtime_role_is_refused: OwnsSchema <-
        "CREATE SCHEMA tenant_x AUTHORIZATION {runtime}", with schema_options();
    create_on_a_tenant_schema_is_refused: SchemaCreate <-
        "CREATE SCHEMA tenant_x; GRANT USAGE, CREATE ON SCHEMA tenant_x TO {runtime}", with schema_options();
    an_unprotected_table_in_a_tenant_schema_is_refused: RlsDisabled <-
        "CREATE SCHEMA tenant_x; GRANT USAGE ON SCHEMA tenant_x TO {runtime};
         CREATE TABLE tenant_x.users (LIKE app.users);
         GRANT SELECT ON tenant_x.users TO {runtime}", with schema_options();
    an_unprotected_tenant_table_in_the_shared_schema_is_refused_in_the_schema_mode: RlsDisabled <-
        "ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY", with schema_options();

    // Constraints.
    a_unique_index_without_the_tenant_column_is_refused: UniqueWithoutTenant <-
        "CREATE UNIQUE INDEX users_email_everywhere ON app.users (email)" => 1;
    a_foreign_key_that_does_not_pair_the_tenant_columns_is_refused: ForeignKeyWithoutTenant <-
        "CREATE UNIQUE INDEX projects_id_everywhere ON app.projects (id);
         ALTER TABLE app.tasks ADD CONSTRAINT tasks_project_anywhere
           FOREIGN KEY (project_id) REFERENCES app.projects (id)" => 1;

    a_table_that_references_the_registry_is_refused: UnscopedTenantReference <-
        "SET ROLE {deploy};
         CREATE TABLE app.api_keys (owner bigint NOT NULL REFERENCES app.accounts (id), secret text);
         GRANT SELECT ON app.api_keys TO {runtime}" => 1;
    a_table_in_the_public_schema_that_references_a_tenant_table_is_refused: UnscopedTenantReference <-
        "CREATE UNIQUE INDEX tasks_id_everywhere ON app.tasks (id);
         CREATE TABLE public.comments (task_id bigint REFERENCES app.tasks (id), body text);
         GRANT SELECT ON public.comments TO PUBLIC" => 1;
    a_readable_table_that_is_neither_tenant_nor_global_is_refused: UndeclaredTableReadable <-
        "CREATE TABLE app.plans (id int PRIMARY KEY, name text NOT NULL);
         GRANT SELECT ON app.plans TO {runtime}" => 1;
    a_table_in_the_public_schema_readable_by_everyone_is_refused: UndeclaredTableReadable <-
        "CREATE TABLE public.emails (email text); GRANT SELECT ON public.emails TO PUBLIC";
    a_readable_foreign_table_is_refused: ForeignTableReadable <-
        "CREATE FOREIGN DATA WRAPPER elsewhere; CREATE SERVER far FOREIGN DATA WRAPPER elsewhere;
         CREATE FOREIGN TABLE app.remote_users (account_id bigint, email text) SERVER far;
         GRANT SELECT ON app.remote_users TO {runtime}" => 1;
    a_readable_table_a_tenant_trigger_copies_rows_into_is_refused: TriggerWritesUnscopedTable <-
        "CREATE TABLE app.audit_log (at timestamptz DEFAULT now(), row_data jsonb);
         CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN INSERT INTO app.audit_log (row_data) VALUES (to_jsonb(NEW)); RETURN NEW; END$$;
         CREATE TRIGGER users_audit AFTER INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.audit();
         GRANT SELECT, INSERT ON app.audit_log TO {runtime}" => 1;
    a_readable_table_a_rule_on_a_tenant_table_writes_into_is_refused: TriggerWritesUnscopedTable <-
        "CREATE TABLE public.seen (email text);
         CREATE RULE users_seen AS ON INSERT TO app.users DO ALSO INSERT INTO public.seen VALUES (NEW.email);
         GRANT SELECT ON public.seen TO PUBLIC";
    a_trigger_on_a_tenant_table_that_calls_pg_notify_is_refused: TriggerNotifies <-
        "CREATE FUNCTION app.announce() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN PERFORM pg_notify('users', to_jsonb(NEW)::text); RETURN NEW; END$$;
         CREATE TRIGGER users_announce AFTER INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.announce()" => 1;
    a_trigger_on_a_tenant_table_that_runs_notify_is_refused: TriggerNotifies <-
        "CREATE FUNCTION public.announce() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN NOTIFY tasks_changed; RETURN NEW; END$$;
         CREATE TRIGGER tasks_announce AFTER UPDATE ON app.tasks FOR EACH ROW EXECUTE FUNCTION public.announce()";

    // The server version floor.
    a_server_below_the_version_floor_warns: ServerVersionBelowFloor <- "SELECT 1",
        with floors_above_every_release()?;
}

#[tokio::test]
async fn the_migrated_database_passes_with_no_refuse_findings() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let report = fx
        .check_with(GuardOptions::new(
            TenancyDeclaration::reference().expect("declaration"),
        ))
        .await?;
    assert!(!report.is_refused(), "{report}");
    assert_eq!(report.refusals().count(), 0);
    // Without the version floor (the one thing that depends on the server), nothing at all.
    assert!(fx.check().await?.findings().is_empty());
    let run = rls_check_as_runtime(fx.db(), &[]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    Ok(())
}

#[tokio::test]
async fn membership_in_a_bypassrls_role_through_a_noinherit_intermediate_role_is_refused()
-> Result<()> {
    let fx = injected(
        RuleId::RoleMemberOfPrivileged,
        "CREATE ROLE {top} BYPASSRLS; CREATE ROLE {mid} NOINHERIT;
         GRANT {top} TO {mid}; GRANT {mid} TO {runtime}",
    )
    .await?;
    let report = fx.check().await?;
    let finding = &report.findings()[0];
    assert!(
        finding
            .message
            .contains(&format!("through {}", fx.extra_role("mid"))),
        "{finding:?}"
    );
    assert!(finding.message.contains("BYPASSRLS"), "{finding:?}");
    assert_eq!(
        finding.fix_sql,
        format!(
            "REVOKE \"{}\" FROM \"{}\";",
            fx.extra_role("mid"),
            fx.db().runtime_role().as_str()
        )
    );
    Ok(())
}

#[tokio::test]
async fn membership_in_pg_execute_server_program_through_an_intermediate_role_is_refused()
-> Result<()> {
    let fx = injected(
        RuleId::RoleMemberOfPredefined,
        "CREATE ROLE {mid}; GRANT pg_execute_server_program TO {mid}; GRANT {mid} TO {runtime}",
    )
    .await?;
    let report = fx.check().await?;
    assert!(
        report.findings()[0]
            .message
            .contains("pg_execute_server_program")
    );
    Ok(())
}

#[tokio::test]
async fn owning_a_tenant_table_through_an_intermediate_role_is_refused() -> Result<()> {
    let fx = injected(
        RuleId::OwnsObject,
        "CREATE ROLE {top}; CREATE ROLE {mid};
         ALTER TABLE app.projects OWNER TO {top};
         GRANT {top} TO {mid}; GRANT {mid} TO {runtime}",
    )
    .await?;
    let report = fx.check().await?;
    // The membership is the one cause; what it brings is listed under it.
    assert_eq!(report.findings().len(), 1, "{report}");
    let finding = &report.findings()[0];
    let objects: Vec<&str> = finding
        .consequences
        .iter()
        .map(|f| f.object.as_str())
        .collect();
    assert_eq!(
        objects,
        ["sequence app.projects_id_seq", "table app.projects"]
    );
    assert_eq!(
        finding.fix_sql,
        format!(
            "REVOKE \"{}\" FROM \"{}\";",
            fx.extra_role("mid"),
            fx.db().runtime_role().as_str()
        )
    );
    Ok(())
}

#[tokio::test]
async fn membership_in_the_deploy_role_is_one_finding_listing_everything_it_owns() -> Result<()> {
    let (mut fx, finding) = the_one_finding("GRANT {deploy} TO {runtime}").await?;
    let runtime = fx.db().runtime_role().as_str();
    let deploy = fx.db().deploy_role().as_str();
    assert_eq!(
        finding.object,
        format!("membership of role {runtime} in role {deploy}")
    );
    assert_eq!(
        finding.fix_sql,
        format!("REVOKE \"{deploy}\" FROM \"{runtime}\";")
    );
    let consequences: std::collections::BTreeSet<RuleId> =
        finding.consequences.iter().map(|f| f.rule).collect();
    // What the deploy role owns, and the migrations table it can read as that owner.
    assert_eq!(
        consequences,
        [
            RuleId::OwnsDatabase,
            RuleId::OwnsSchema,
            RuleId::OwnsObject,
            RuleId::UndeclaredTableReadable
        ]
        .into()
    );
    assert!(finding.consequences.len() > 10, "{finding:#?}");
    let run = rls_check_as_runtime(fx.db(), &[]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("REFUSE (1)") && run.stdout.contains("consequences:"),
        "{}",
        run.stdout
    );
    fix_fixes_it(&mut fx, &finding.fix_sql).await?;
    Ok(())
}

#[tokio::test]
async fn grant_all_on_the_registry_is_one_finding_with_one_revoke_that_fixes_it() -> Result<()> {
    let (mut fx, finding) = the_one_finding("GRANT ALL ON app.accounts TO {runtime}").await?;
    let consequences: std::collections::BTreeSet<RuleId> =
        finding.consequences.iter().map(|f| f.rule).collect();
    assert_eq!(
        consequences,
        [
            RuleId::TableTruncate,
            RuleId::TableReferences,
            RuleId::TableTrigger,
            RuleId::RegistryPrivilege
        ]
        .into(),
        "{finding:#?}"
    );
    let runtime = fx.db().runtime_role().as_str();
    assert_eq!(
        finding.object,
        format!("grants to role {runtime} on schema app")
    );
    let run = rls_check_as_runtime(fx.db(), &["--format", "json"]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(json["summary"]["refuse"], 1, "{json}");
    let listed = json["refuse"][0]["consequences"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(listed, finding.consequences.len(), "{json}");
    assert_eq!(
        finding.fix_sql.matches("REVOKE").count(),
        1,
        "one statement: {}",
        finding.fix_sql
    );
    fix_fixes_it(&mut fx, &finding.fix_sql).await?;
    Ok(())
}

#[tokio::test]
async fn grant_all_on_every_table_of_the_schema_is_one_finding_that_fixes_it() -> Result<()> {
    let (mut fx, finding) = the_one_finding(
        "GRANT ALL ON ALL TABLES IN SCHEMA app TO {runtime};
         GRANT ALL ON ALL SEQUENCES IN SCHEMA app TO {runtime}",
    )
    .await?;
    assert!(finding.consequences.len() >= 13, "{finding:#?}");
    assert_eq!(finding.severity, Severity::Refuse);
    fix_fixes_it(&mut fx, &finding.fix_sql).await?;
    Ok(())
}

#[tokio::test]
async fn a_policy_without_with_check_only_warns_and_rls_check_passes() -> Result<()> {
    let sql = format!(
        "DROP POLICY tenant_isolation ON app.tasks;
         CREATE POLICY tenant_isolation ON app.tasks USING ({CANONICAL})"
    );
    let fx = injected(RuleId::PolicyImplicitWithCheck, &sql).await?;
    assert_eq!(RuleId::PolicyImplicitWithCheck.severity(), Severity::Warn);
    let run = rls_check_as_runtime(fx.db(), &[]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("WARN (1)"), "{run:?}");
    Ok(())
}

#[tokio::test]
async fn a_table_that_has_the_tenant_column_but_is_not_declared_is_checked_too() -> Result<()> {
    // One table never set up: one finding, its three faults listed under it.
    let (mut fx, finding) =
        the_one_finding("CREATE TABLE app.notes (account_id bigint NOT NULL, body text)").await?;
    assert_eq!(finding.object, "table app.notes");
    let consequences: Vec<RuleId> = finding.consequences.iter().map(|f| f.rule).collect();
    assert_eq!(
        consequences,
        [
            RuleId::RlsDisabled,
            RuleId::RlsNotForced,
            RuleId::PolicyMissing
        ],
        "{finding:#?}"
    );
    assert!(
        finding.fix_sql.contains("ENABLE ROW LEVEL SECURITY;")
            && finding.fix_sql.contains("FORCE ROW LEVEL SECURITY;")
            && finding.fix_sql.contains("CREATE POLICY tenant_isolation"),
        "{finding:?}"
    );
    fix_fixes_it(&mut fx, &finding.fix_sql).await?;
    Ok(())
}

#[tokio::test]
async fn policies_are_read_schema_qualified_whatever_the_role_search_path() -> Result<()> {
    // With app on the role's search_path, pg_get_expr would print tenant() unqualified; the
    // guard pins its own search_path so policies compare (and print) the same everywhere.
    let fx = injected(
        RuleId::PolicyNotCanonical,
        "ALTER ROLE {runtime} SET search_path = app, public;
         CREATE FUNCTION app.tenant() RETURNS bigint LANGUAGE sql STABLE
           AS $$SELECT nullif(current_setting('app.tenant_id', true), '')::bigint$$;
         ALTER POLICY tenant_isolation ON app.tasks
           USING (account_id = app.tenant()) WITH CHECK (account_id = app.tenant())",
    )
    .await?;
    let report = fx.check().await?;
    assert!(
        report.findings()[0].message.contains("app.tenant()"),
        "{report}"
    );
    Ok(())
}

#[tokio::test]
async fn a_using_true_policy_held_in_by_a_canonical_restrictive_policy_passes() -> Result<()> {
    stays_quiet(&format!(
        "CREATE POLICY tenant_only ON app.tasks AS RESTRICTIVE USING ({CANONICAL}) WITH CHECK ({CANONICAL});
         CREATE POLICY open_all ON app.tasks USING (true) WITH CHECK (true)"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_using_true_policy_for_an_unrelated_role_passes() -> Result<()> {
    stays_quiet("CREATE ROLE {mid}; CREATE POLICY open_to_mid ON app.tasks TO {mid} USING (true)")
        .await?;
    Ok(())
}

#[tokio::test]
async fn policies_with_identical_stored_trees_on_different_columns_are_judged_apart() -> Result<()>
{
    // The guard deparses each policy shape once; these two policies are stored as the same
    // tree (column 1, same text offsets), but column 1 is account_id in one table and
    // tenant_ref in the other, so only the second is wrong.
    let mut fx = Fixture::migrated().await?;
    let mut sql = String::new();
    for (table, first) in [("notes_x", "account_id"), ("notes_y", "tenant_ref")] {
        let second = if first == "account_id" {
            "tenant_ref"
        } else {
            "account_id"
        };
        sql.push_str(&format!(
            "CREATE TABLE app.{table} ({first} bigint, {second} bigint);
             ALTER TABLE app.{table} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE app.{table} FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON app.{table}
               USING ({first} = nullif(current_setting('app.tenant_id', true), '')::bigint)
               WITH CHECK ({first} = nullif(current_setting('app.tenant_id', true), '')::bigint);"
        ));
    }
    fx.inject(&sql).await?;
    let report = fx.check().await?;
    assert_eq!(
        rules(&report),
        [RuleId::PolicyNotCanonical].into(),
        "{report}"
    );
    let objects: Vec<&str> = report
        .findings()
        .iter()
        .map(|f| f.object.as_str())
        .collect();
    assert_eq!(objects, ["table app.notes_y"], "{report}");
    Ok(())
}

#[tokio::test]
async fn a_readable_security_invoker_view_passes() -> Result<()> {
    stays_quiet(
        "CREATE VIEW app.my_emails WITH (security_invoker = on) AS SELECT account_id, email FROM app.users;
         GRANT SELECT ON app.my_emails TO {runtime}",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_allowlisted_security_definer_function_passes_in_the_library_and_rls_check() -> Result<()>
{
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "CREATE FUNCTION app.count_all_users() RETURNS bigint LANGUAGE sql SECURITY DEFINER
           AS 'SELECT count(*) FROM app.users'",
    )
    .await?;
    let allowed = fx
        .check_with(options().allow_security_definer("app.count_all_users"))
        .await?;
    assert!(allowed.findings().is_empty(), "{allowed}");
    let elsewhere = fx
        .check_with(options().allow_security_definer("public.count_all_users"))
        .await?;
    assert_eq!(rules(&elsewhere), [RuleId::SecurityDefinerFunction].into());
    let run = rls_check_as_runtime(
        fx.db(),
        &["--allow-security-definer", "app.count_all_users"],
    )
    .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    Ok(())
}

#[tokio::test]
async fn a_tenant_preset_by_the_client_is_refused() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let url: rls_tenancy::DatabaseUrl = format!(
        "{}?options=-c%20app.tenant_id%3D7",
        fx.db().runtime_url().expose_secret()
    )
    .parse()?;
    let report = rls_tenancy::guard::check_url(&url, &options()).await?;
    assert_eq!(
        rules(&report),
        [RuleId::TenantVariablePreset].into(),
        "{report}"
    );
    assert!(
        report.findings()[0].message.contains("connection options"),
        "{report}"
    );
    Ok(())
}

#[tokio::test]
async fn an_empty_tenant_preset_passes() -> Result<()> {
    stays_quiet("ALTER ROLE {runtime} SET app.tenant_id = ''").await?;
    Ok(())
}

#[tokio::test]
async fn a_unique_index_on_columns_the_role_cannot_write_passes() -> Result<()> {
    stays_quiet("CREATE UNIQUE INDEX users_id_everywhere ON app.users (id)").await?;
    Ok(())
}

// Tables outside row-level security.
const COMMENTS_ON_TASKS: &str = "CREATE UNIQUE INDEX tasks_id_everywhere ON app.tasks (id);
     CREATE TABLE app.comments (id bigint PRIMARY KEY, task_id bigint REFERENCES app.tasks (id), body text);";

#[tokio::test]
async fn a_table_that_references_a_tenant_table_by_id_alone_is_refused_and_really_leaks()
-> Result<()> {
    // What the review found: the unique index passes, the runtime role is granted DML on
    // the table (by default privileges then, by hand now), and nothing said a word.
    let fx = injected(
        RuleId::UnscopedTenantReference,
        &format!(
            "SET ROLE {{deploy}}; {COMMENTS_ON_TASKS}
             GRANT SELECT, INSERT, UPDATE, DELETE ON app.comments TO {{runtime}}"
        ),
    )
    .await?;
    let report = fx.check().await?;
    let finding = &report.findings()[0];
    let runtime = fx.db().runtime_role().as_str();
    assert_eq!(finding.object, "table app.comments");
    assert!(
        finding.message.contains(
            "references tenant table app.tasks (foreign key comments_task_id_fkey) but is not a tenant table"
        ) && finding.message.contains("can read and write"),
        "{finding:?}"
    );
    assert_eq!(
        finding.fix_sql,
        format!(
            "REVOKE ALL ON TABLE \"app\".\"comments\" FROM \"{runtime}\"; -- then add the tenant column \"account_id\", reference \"app\".\"tasks\" by (\"account_id\", \"id\"), declare the table in policies/tenancy.toml and run rls-migrate"
        )
    );
    // The leak is real: in tenant 1's transaction the runtime role reads tenant 2's comment.
    let admin = fx.db().admin_pool().await?;
    sqlx::raw_sql(
        "INSERT INTO app.accounts (slug, name) VALUES ('one', 'One'), ('two', 'Two');
         INSERT INTO app.projects (account_id, name) SELECT id, slug FROM app.accounts;
         INSERT INTO app.tasks (account_id, project_id, name)
              SELECT account_id, id, name FROM app.projects;
         INSERT INTO app.comments (id, task_id, body)
              SELECT t.id, t.id, a.slug FROM app.tasks t JOIN app.accounts a ON a.id = t.account_id",
    )
    .execute(&admin)
    .await?;
    let one: i64 = sqlx::query_scalar("SELECT id FROM app.accounts WHERE slug = 'one'")
        .fetch_one(&admin)
        .await?;
    let pool = rls_tenancy::TenantPool::connect(
        fx.db().runtime_url(),
        rls_tenancy::TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .skip_guard(),
    )
    .await?;
    let scope = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(one)?, "one".parse()?);
    let mut tx = pool.begin(&scope).await?;
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM app.comments ORDER BY body")
        .fetch_all(&mut *tx)
        .await?;
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM app.tasks")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(tasks, 1, "the tenant table itself is guarded");
    assert_eq!(bodies, ["one", "two"], "the comments table is not");
    tx.rollback().await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn a_table_that_carries_the_tenant_column_under_another_name_is_refused() -> Result<()> {
    let fx = injected(
        RuleId::UnscopedTenantReference,
        "SET ROLE {deploy};
         CREATE TABLE app.comments (tenant bigint NOT NULL, task_id bigint NOT NULL, body text,
             FOREIGN KEY (tenant, task_id) REFERENCES app.tasks (account_id, id));
         GRANT SELECT, INSERT, UPDATE, DELETE ON app.comments TO {runtime}",
    )
    .await?;
    let report = fx.check().await?;
    assert!(
        report.findings()[0]
            .fix_sql
            .ends_with("-- then declare it in policies/tenancy.toml with column = \"tenant\" and run rls-migrate"),
        "{report}"
    );
    Ok(())
}

#[tokio::test]
async fn a_table_that_references_tenant_rows_through_another_table_is_refused() -> Result<()> {
    // Only the second table is reachable; its rows still point at tenant rows.
    let fx = injected(
        RuleId::UnscopedTenantReference,
        &format!(
            "{COMMENTS_ON_TASKS}
             CREATE TABLE app.comment_likes (comment_id bigint REFERENCES app.comments (id), who text);
             GRANT SELECT ON app.comment_likes TO {{runtime}}"
        ),
    )
    .await?;
    let report = fx.check().await?;
    let finding = &report.findings()[0];
    assert_eq!(finding.object, "table app.comment_likes", "{report}");
    assert!(
        finding
            .message
            .contains("references app.comments, which itself references tenant rows"),
        "{finding:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_table_writable_through_an_intermediate_role_that_references_tenant_rows_is_refused()
-> Result<()> {
    let fx = injected(
        RuleId::UnscopedTenantReference,
        &format!(
            "{COMMENTS_ON_TASKS}
             CREATE ROLE {{mid}}; GRANT INSERT ON app.comments TO {{mid}}; GRANT {{mid}} TO {{runtime}}"
        ),
    )
    .await?;
    let report = fx.check().await?;
    let finding = &report.findings()[0];
    assert!(
        finding.message.contains("can write table app.comments")
            && finding
                .message
                .contains("a write probes which keys other tenants have"),
        "{finding:?}"
    );
    assert!(
        finding.fix_sql.starts_with(&format!(
            "REVOKE ALL ON TABLE \"app\".\"comments\" FROM \"{}\";",
            fx.extra_role("mid")
        )),
        "{finding:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_table_that_references_tenant_rows_but_the_role_holds_no_grant_on_passes() -> Result<()> {
    stays_quiet(&format!(
        "{COMMENTS_ON_TASKS}
         CREATE SCHEMA private; GRANT USAGE ON SCHEMA private TO {{runtime}};
         CREATE TABLE private.comments (task_id bigint REFERENCES app.tasks (id), body text)"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_declared_global_lookup_table_passes_in_the_library_and_rls_check() -> Result<()> {
    // Tenant tables and the registry may reference it: that does not make it tenant data.
    let fx = injected(
        RuleId::UndeclaredTableReadable,
        "SET ROLE {deploy};
         CREATE TABLE app.plans (id int PRIMARY KEY, name text NOT NULL);
         ALTER TABLE app.accounts ADD COLUMN plan_id int REFERENCES app.plans (id);
         ALTER TABLE app.tasks ADD COLUMN plan_id int REFERENCES app.plans (id);
         GRANT SELECT ON app.plans TO {runtime}",
    )
    .await?;
    let report = fx.check().await?;
    assert_eq!(report.findings()[0].object, "table app.plans");
    assert!(
        report.findings()[0]
            .fix_sql
            .contains("[[global_table]] name = \"plans\""),
        "{report}"
    );
    let declared = GuardOptions::new(declaring_global(&["plans"])?).min_server_versions(Vec::new());
    let report = fx.check_with(declared).await?;
    assert!(report.findings().is_empty(), "{report}");
    let file = tempfile::NamedTempFile::new()?;
    let mut text = include_str!("../../../policies/tenancy.toml").to_owned();
    text.push_str("\n[[global_table]]\nname = \"plans\"\n");
    std::fs::write(file.path(), text)?;
    let path = file.path().to_string_lossy().into_owned();
    let run = rls_check_as_runtime(fx.db(), &["--declaration", &path]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    rls_check_refuses(&fx, RuleId::UndeclaredTableReadable).await?;
    Ok(())
}

#[tokio::test]
async fn a_materialized_view_over_declared_global_tables_only_passes() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "CREATE TABLE app.plans (id int PRIMARY KEY, name text NOT NULL);
         CREATE MATERIALIZED VIEW app.plan_names AS SELECT name FROM app.plans;
         GRANT SELECT ON app.plans, app.plan_names TO {runtime}",
    )
    .await?;
    let declared = GuardOptions::new(declaring_global(&["plans"])?).min_server_versions(Vec::new());
    let report = fx.check_with(declared).await?;
    assert!(report.findings().is_empty(), "{report}");
    // Undeclared, the same table makes both the table and the view over it refused.
    assert_eq!(
        rules(&fx.check().await?),
        [
            RuleId::MaterializedViewReadable,
            RuleId::UndeclaredTableReadable
        ]
        .into()
    );
    Ok(())
}

#[tokio::test]
async fn a_table_a_tenant_trigger_copies_rows_into_is_refused_even_when_declared_global()
-> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "CREATE TABLE app.audit_log (row_data jsonb);
         CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN INSERT INTO \"app\".audit_log VALUES (to_jsonb(NEW)); RETURN NEW; END$$;
         CREATE TRIGGER users_audit AFTER INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.audit();
         GRANT SELECT ON app.audit_log TO {runtime}",
    )
    .await?;
    let declared =
        GuardOptions::new(declaring_global(&["audit_log"])?).min_server_versions(Vec::new());
    let report = fx.check_with(declared).await?;
    assert_eq!(
        rules(&report),
        [RuleId::TriggerWritesUnscopedTable].into(),
        "{report}"
    );
    let finding = &report.findings()[0];
    assert!(
        finding.message.starts_with(
            "trigger users_audit on tenant table app.users writes into table app.audit_log"
        ) && finding.message.contains("declared global"),
        "{finding:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_trigger_that_only_reads_a_global_table_passes() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "CREATE TABLE app.plans (id int PRIMARY KEY, name text NOT NULL);
         CREATE FUNCTION app.check_plan() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN PERFORM 1 FROM app.plans; RETURN NEW; END$$;
         CREATE TRIGGER users_plan BEFORE INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.check_plan();
         GRANT SELECT ON app.plans TO {runtime}",
    )
    .await?;
    let declared = GuardOptions::new(declaring_global(&["plans"])?).min_server_versions(Vec::new());
    let report = fx.check_with(declared).await?;
    assert!(report.findings().is_empty(), "{report}");
    Ok(())
}

#[tokio::test]
async fn a_notifying_trigger_that_is_disabled_passes() -> Result<()> {
    stays_quiet(
        "CREATE FUNCTION app.announce() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN PERFORM pg_notify('users', to_jsonb(NEW)::text); RETURN NEW; END$$;
         CREATE TRIGGER users_announce AFTER INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.announce();
         ALTER TABLE app.users DISABLE TRIGGER users_announce",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_copy_of_a_tenant_table_the_role_holds_no_grant_on_passes() -> Result<()> {
    stays_quiet(
        "CREATE SCHEMA archive; GRANT USAGE ON SCHEMA archive TO {runtime};
         CREATE TABLE archive.users AS SELECT * FROM app.users",
    )
    .await?;
    Ok(())
}

// The server version floor.
#[tokio::test]
async fn a_server_below_the_version_floor_warns_and_rls_check_passes() -> Result<()> {
    use sqlx::Connection;
    let fx = Fixture::migrated().await?;
    let mut conn =
        sqlx::PgConnection::connect_with(&fx.db().runtime_url().connect_options()?).await?;
    let num: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut conn)
        .await?;
    let floor = format!("{}.{}", num / 10_000, num % 10_000 + 1);
    let report = fx
        .check_with(
            GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .min_server_versions(vec![floor.parse()?]),
        )
        .await?;
    assert_eq!(
        rules(&report),
        [RuleId::ServerVersionBelowFloor].into(),
        "{report}"
    );
    assert!(!report.is_refused());
    let run = rls_check_as_runtime(fx.db(), &["--min-server-version", &floor]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("[server-version-below-floor]"),
        "{run:?}"
    );
    let current = format!("{}.{}", num / 10_000, num % 10_000);
    let at_floor = fx
        .check_with(
            GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .min_server_versions(vec![current.parse()?]),
        )
        .await?;
    assert!(at_floor.findings().is_empty(), "{at_floor}");
    Ok(())
}

#[tokio::test]
async fn a_search_path_preset_is_left_alone_in_the_rls_mode_and_refused_by_rls_check_in_the_schema_mode()
-> Result<()> {
    let fx = stays_quiet("ALTER ROLE {runtime} SET search_path = app").await?;
    let run = rls_check_as_runtime(fx.db(), &["--strategy", "schema"]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("[search-path-preset]"), "{run:?}");
    assert!(
        run.stdout.contains("RESET search_path;"),
        "the fix: {}",
        run.stdout
    );
    Ok(())
}

#[test]
fn every_rule_has_an_injected_case() {
    // Rules that need more than one database, injected where they are tested.
    let elsewhere = [
        // tests/it/databases/check.rs: a template or leftover database the role reaches.
        RuleId::DatabaseConnectUnplaced,
    ];
    let missing: Vec<&str> = RuleId::ALL
        .iter()
        .filter(|rule| !COVERED.contains(rule) && !elsewhere.contains(rule))
        .map(|rule| rule.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "no case in the table injects: {missing:?}"
    );
}
