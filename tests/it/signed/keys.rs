//! Keys: the pool refuses to start without the right one; rls-migrate creates, installs,
//! rotates and retires them and never prints them.

use std::os::unix::fs::PermissionsExt;

use rls_tenancy::{
    DbError, MigrateOptions, REFERENCE_MIGRATIONS, ScratchDatabase, TenancyDeclaration, TenantKey,
    TenantKeyError, TenantPool, TenantPoolOptions, migrate_with,
};

use super::attacks::visible;
use crate::support::TwoTenants;

fn options() -> TenantPoolOptions {
    TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
}

fn refusal(opened: Result<TenantPool, DbError>) -> String {
    match opened {
        Err(DbError::TenantContext { reason }) => reason,
        other => panic!("expected a tenant context refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_pool_refuses_to_start_without_the_right_key() {
    let fixture = TwoTenants::signed().await;
    let url = fixture.db.runtime_url();

    let no_key = refusal(TenantPool::connect(url, options()).await);
    assert!(no_key.contains("has no tenant key"), "{no_key}");

    let wrong = TenantKey::generate();
    let wrong_key = refusal(TenantPool::connect(url, options().tenant_key(wrong.clone())).await);
    assert!(
        wrong_key.contains(&format!("key {} is not installed", wrong.id())),
        "{wrong_key}"
    );
    assert!(!wrong_key.contains(&wrong.to_hex()), "the key was printed");

    let missing =
        TenantPool::connect(url, options().tenant_key_file("/nonexistent/tenant.key")).await;
    assert!(
        matches!(
            missing,
            Err(DbError::TenantKey(TenantKeyError::Read { .. }))
        ),
        "{missing:?}"
    );

    let plain = ScratchDatabase::migrated().await.expect("plain database");
    let key_on_plain = refusal(
        TenantPool::connect(
            plain.runtime_url(),
            options().tenant_key(TenantKey::generate()),
        )
        .await,
    );
    assert!(
        key_on_plain.contains("plain tenant context"),
        "{key_on_plain}"
    );

    let right = fixture.pool_options();
    let pool = TenantPool::connect(url, right)
        .await
        .expect("the right key opens");
    let mut tx = pool.begin(&fixture.a.scope).await.expect("begin");
    assert!(!visible(&mut tx).await.is_empty());
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_rotation_accepts_both_keys_until_the_old_one_is_retired() {
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed database");
    let old = db.tenant_key().expect("signed").clone();
    let new = TenantKey::generate();
    let decl = TenancyDeclaration::reference().expect("declaration");
    let migrate =
        MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str()).expect("options");

    let report = migrate_with(
        &REFERENCE_MIGRATIONS,
        &decl,
        &migrate.clone().tenant_key(new.clone()),
    )
    .await
    .expect("install the new key");
    assert_eq!(report.tenant_key_installed, Some(new.id()));
    let mut both = vec![old.id(), new.id()];
    both.sort();
    assert_eq!(report.tenant_keys, both);

    let with_old = TenantPool::connect(db.runtime_url(), options().tenant_key(old.clone()))
        .await
        .expect("the old key still opens");
    TenantPool::connect(db.runtime_url(), options().tenant_key(new.clone()))
        .await
        .expect("the new key opens");

    let report = migrate_with(
        &REFERENCE_MIGRATIONS,
        &decl,
        &migrate.tenant_key(new.clone()).retire_old_keys(),
    )
    .await
    .expect("retire");
    assert_eq!(report.tenant_keys_retired, vec![old.id()]);
    assert_eq!(report.tenant_keys, vec![new.id()]);

    let retired =
        refusal(TenantPool::connect(db.runtime_url(), options().tenant_key(old.clone())).await);
    assert!(retired.contains("is not installed"), "{retired}");
    // A pool opened before the retirement fails closed at its next transaction.
    let scope = rls_tenancy::TenantScope::new(
        rls_tenancy::TenantId::new(1).expect("id"),
        "tenant-x".parse().expect("slug"),
    );
    assert!(matches!(
        with_old.begin(&scope).await,
        Err(DbError::Database(_))
    ));
    TenantPool::connect(db.runtime_url(), options().tenant_key(new))
        .await
        .expect("the new key still opens");
}

fn rls_migrate(args: &[&str], deploy_url: &str) -> (i32, String) {
    crate::migrate::rls_migrate(args, Some(deploy_url))
}

#[tokio::test]
async fn rls_migrate_creates_installs_and_retires_keys_without_printing_them() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let deploy = db.deploy_url().expose_secret().to_owned();
    let role = db.runtime_role().as_str().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tenant.key");
    let path_arg = path.to_str().expect("utf-8 path");

    let (code, output) = rls_migrate(&["--runtime-role", &role], &deploy);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("--tenant-key-file"), "{output}");

    let (code, first) = rls_migrate(
        &["--runtime-role", &role, "--tenant-key-file", path_arg],
        &deploy,
    );
    assert_eq!(code, 0, "{first}");
    let key = TenantKey::from_file(&path).expect("the key file was created");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        first.contains(&format!("installed {}", key.id())),
        "{first}"
    );
    assert!(
        !first.contains(&key.to_hex()),
        "the key was printed: {first}"
    );

    let (code, second) = rls_migrate(
        &["--runtime-role", &role, "--tenant-key-file", path_arg],
        &deploy,
    );
    assert_eq!(code, 0, "{second}");
    assert!(
        second.contains("up to date") && !second.contains("installed"),
        "{second}"
    );

    let (code, output) = rls_migrate(&["--runtime-role", &role, "--retire-old-keys"], &deploy);
    assert_eq!(code, 2, "{output}");

    let new_path = dir.path().join("tenant-2.key");
    let new_arg = new_path.to_str().expect("utf-8 path");
    let (code, rotated) = rls_migrate(
        &["--runtime-role", &role, "--tenant-key-file", new_arg],
        &deploy,
    );
    assert_eq!(code, 0, "{rotated}");
    let new = TenantKey::from_file(&new_path).expect("new key");
    let (code, retired) = rls_migrate(
        &[
            "--runtime-role",
            &role,
            "--tenant-key-file",
            new_arg,
            "--retire-old-keys",
        ],
        &deploy,
    );
    assert_eq!(code, 0, "{retired}");
    assert!(
        retired.contains(&format!("retired {}", key.id())),
        "{retired}"
    );
    assert!(
        retired.contains(&format!("keys accepted: {}", new.id())),
        "{retired}"
    );

    let (code, plain) = rls_migrate(
        &["--runtime-role", &role, "--tenant-context", "plain"],
        &deploy,
    );
    assert_eq!(code, 0, "{plain}");
    assert!(plain.contains("tenant context: plain"), "{plain}");
    let admin = db.admin_pool().await.expect("admin");
    let left: Option<String> =
        sqlx::query_scalar("SELECT to_regnamespace('rls_tenancy_secret')::text")
            .fetch_one(&admin)
            .await
            .expect("regnamespace");
    assert_eq!(left, None, "the keys outlived the signed context");
}
