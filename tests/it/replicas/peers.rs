//! Replicas as a group of peers with failure detection: a standby lost under read load, a
//! draining standby, and the replica URLs refused or warned about at start (the guard runs
//! on each replica).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rls_tenancy::{
    DbError, LocalCluster, ReplicatedCluster, RouteError, RoutingOptions, RoutingPool, ServedBy,
    TenancyDeclaration, TenantPoolOptions, TenantScope,
};
use sqlx::Connection;

use super::{admin_on, options, routing_pool, shared, two_tenants};
use crate::logs::Warnings;
use crate::support::TwoTenants;

/// What a reader saw: reads per server port, reads that could not begin, and reads cut
/// after they began (their server went away under them).
#[derive(Default)]
struct Tally {
    per_port: std::sync::Mutex<BTreeMap<i32, usize>>,
    failed: std::sync::Mutex<Vec<String>>,
    cut: std::sync::Mutex<Vec<String>>,
    reads: AtomicUsize,
}

/// How a read failed.
#[derive(Debug)]
enum ReadFailed {
    /// `pool.read` itself: the routing pool found no server.
    Begin(DbError),
    /// A statement of a begun read: never re-run by the pool, returned as it is.
    Cut(String),
}

/// One read of tenant A's own subtask, held open `hold` (so that readers need several
/// connections per server); the server's port.
async fn read_once(
    pool: &RoutingPool,
    scope: &TenantScope,
    hold: Duration,
) -> Result<i32, ReadFailed> {
    let mut tx = pool.read(scope).await.map_err(ReadFailed::Begin)?;
    let (port, own): (i32, i64) = sqlx::query_as(
        "SELECT inet_server_port(), count(*) FROM app.subtasks, pg_sleep($1) WHERE name = 'subtask of tenant-a'",
    )
    .bind(hold.as_secs_f64())
    .fetch_one(&mut **tx)
    .await
    .map_err(|err| ReadFailed::Cut(err.to_string()))?;
    assert_eq!(own, 1, "tenant A sees its own subtask");
    tx.commit()
        .await
        .map_err(|err| ReadFailed::Cut(err.to_string()))?;
    Ok(port)
}

/// Starts `readers` tasks reading until `stop` is set.
fn read_load(
    pool: &RoutingPool,
    fixture: &TwoTenants,
    readers: usize,
    hold: Duration,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..readers)
        .map(|_| {
            let (pool, scope) = (pool.clone(), fixture.a.scope.clone());
            let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
            tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    match read_once(&pool, &scope, hold).await {
                        Ok(port) => {
                            *tally
                                .per_port
                                .lock()
                                .expect("tally")
                                .entry(port)
                                .or_default() += 1;
                        }
                        Err(ReadFailed::Begin(err)) => {
                            tally.failed.lock().expect("tally").push(err.to_string());
                        }
                        Err(ReadFailed::Cut(err)) => tally.cut.lock().expect("tally").push(err),
                    }
                    tally.reads.fetch_add(1, Ordering::AcqRel);
                }
            })
        })
        .collect()
}

/// Waits until `pool` says whether the replica at `index` is up, as `up`.
async fn wait_replica(pool: &RoutingPool, index: usize, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.replica_status()[index].up != up {
        assert!(
            Instant::now() < deadline,
            "replica {index} never became up={up}: {:?}",
            pool.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `tally` counts `more` reads beyond now.
async fn wait_reads(tally: &Tally, more: usize) {
    let target = tally.reads.load(Ordering::Acquire) + more;
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.reads.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "the readers go on reading");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_stopped_under_read_load_fails_no_read_and_is_back_after_the_check_interval() {
    let cluster = ReplicatedCluster::start(&[None, None])
        .await
        .expect("replicated cluster");
    let [lost, kept] = [&cluster.standbys()[0], &cluster.standbys()[1]];
    let fixture = two_tenants(&cluster, &[lost, kept]).await;
    let pool = routing_pool(
        &fixture,
        options(&fixture, &[lost, kept]).check_interval(Duration::from_secs(1)),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let readers = read_load(&pool, &fixture, 4, Duration::ZERO, &stop, &tally);
    wait_reads(&tally, 40).await;

    tokio::task::block_in_place(|| lost.stop()).expect("stop a standby");
    wait_replica(&pool, 0, false).await;
    wait_reads(&tally, 100).await;
    let before_resume = tally.per_port.lock().expect("tally").clone();

    tokio::task::block_in_place(|| lost.resume()).expect("start it again");
    wait_replica(&pool, 0, true).await;
    let served_by_lost = |tally: &Tally| {
        tally
            .per_port
            .lock()
            .expect("tally")
            .get(&i32::from(lost.port()))
            .copied()
            .unwrap_or_default()
    };
    let back_from = served_by_lost(&tally);
    let deadline = Instant::now() + Duration::from_secs(60);
    while served_by_lost(&tally) == back_from {
        assert!(Instant::now() < deadline, "the standby serves reads again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.await.expect("reader");
    }

    let failed = tally.failed.lock().expect("tally").clone();
    assert!(
        failed.is_empty(),
        "no read failed to begin while the primary was up: {failed:?}"
    );
    // A read running on the standby when it stopped is cut, and not run again behind the
    // caller's back: at most one per reader, with the server's own error.
    let cut = tally.cut.lock().expect("tally").clone();
    assert!(
        cut.len() <= 4 && cut.iter().all(|e| e.contains("connection")),
        "{cut:?}"
    );
    assert!(
        before_resume.get(&i32::from(kept.port())).copied() > Some(100),
        "the other standby took the reads: {before_resume:?}"
    );
}

/// Makes `standby` refuse new logins of `role` (a pg_hba.conf `reject` line, reloaded): it
/// drains, its open sessions go on.
async fn drain(fixture: &TwoTenants, standby: &LocalCluster, role: &str, on: bool) {
    let hba = standby.dir().join("data").join("pg_hba.conf");
    let line = format!("host all {role} 127.0.0.1/32 reject\n");
    let text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    let text = if on {
        format!("{line}{text}")
    } else {
        text.replacen(&line, "", 1)
    };
    std::fs::write(&hba, text).expect("write pg_hba.conf");
    let admin = admin_on(fixture, standby).await;
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&admin)
        .await
        .expect("reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_is_avoided_without_a_single_error() {
    let shared = shared().await;
    let [one, two] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one, two]).await;
    let pool = routing_pool(
        &fixture,
        options(&fixture, &[one, two]).check_interval(Duration::from_secs(1)),
    )
    .await;
    for _ in 0..4 {
        read_once(&pool, &fixture.a.scope, Duration::ZERO)
            .await
            .expect("a read before the drain");
    }
    let role = fixture.db.runtime_role().as_str().to_owned();
    drain(&fixture, two, &role, true).await;
    let login = sqlx::PgConnection::connect_with(
        &two.url_for(fixture.db.runtime_url())
            .expect("url")
            .connect_options()
            .expect("options"),
    )
    .await;
    assert_eq!(
        login.err().and_then(|e| e
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()))),
        Some("28000".to_owned()),
        "the drained standby refuses a new login of the role"
    );

    // Readers holding their transactions need new connections on both standbys.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let readers = read_load(&pool, &fixture, 6, Duration::from_millis(20), &stop, &tally);
    wait_replica(&pool, 1, false).await;
    wait_reads(&tally, 60).await;
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.await.expect("reader");
    }
    let failed = tally.failed.lock().expect("tally").clone();
    let cut = tally.cut.lock().expect("tally").clone();
    assert!(
        failed.is_empty() && cut.is_empty(),
        "no read failed: {failed:?} {cut:?}"
    );
    assert!(
        tally
            .per_port
            .lock()
            .expect("tally")
            .get(&i32::from(one.port()))
            .is_some(),
        "the other standby served"
    );

    drain(&fixture, two, &role, false).await;
    wait_replica(&pool, 1, true).await;
    let mut seen = BTreeMap::new();
    for _ in 0..4 {
        *seen
            .entry(
                read_once(&pool, &fixture.a.scope, Duration::ZERO)
                    .await
                    .expect("read"),
            )
            .or_insert(0) += 1;
    }
    assert_eq!(
        seen,
        BTreeMap::from([(i32::from(one.port()), 2), (i32::from(two.port()), 2)]),
        "back in the round-robin once it takes logins again"
    );
}

#[tokio::test]
async fn a_replica_with_another_role_or_database_is_refused_at_start() {
    let shared = shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let on_one = one.url_for(fixture.db.runtime_url()).expect("url");
    for (replica, what) in [
        (
            on_one.with_credentials("someone_else", "pw").expect("url"),
            "role",
        ),
        (on_one.with_database("postgres"), "database"),
    ] {
        let refused = RoutingPool::connect(
            fixture.db.runtime_url(),
            options(&fixture, &[]).replica(replica),
        )
        .await;
        assert!(
            matches!(&refused, Err(RouteError::ReplicaMismatch { what: w, .. }) if *w == what),
            "{what}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_replica_whose_role_the_guard_refuses_is_refused_at_start() {
    let shared = shared().await;
    let fixture = two_tenants(&shared.cluster, &[]).await;
    let primary = shared
        .cluster
        .primary()
        .local_cluster()
        .expect("a local primary");
    // A copy of the fixture that is a server of its own: a standby, replayed, then promoted.
    let copy = tokio::task::spawn_blocking(move || primary.start_standby(None))
        .await
        .expect("join")
        .expect("a standby of the primary");
    shared
        .cluster
        .wait_replayed(&copy, Duration::from_secs(60))
        .await
        .expect("the copy replays the fixture");
    copy.promote().expect("promoted");
    let accepted = routing_pool(&fixture, options(&fixture, &[&copy])).await;
    assert_eq!(accepted.replica_status()[0].in_recovery, Some(false));
    accepted.close().await;

    // Misconfigured on that server only: its runtime role may bypass row-level security.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE {} BYPASSRLS",
        fixture.db.runtime_role()
    )))
    .execute(&admin_on(&fixture, &copy).await)
    .await
    .expect("ALTER ROLE on the copy");
    let refused = RoutingPool::connect(fixture.db.runtime_url(), options(&fixture, &[&copy])).await;
    let message = match refused {
        Err(err @ RouteError::ReplicaRefused { .. }) => err.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the guard accepted a replica whose role bypasses row-level security"),
    };
    assert!(message.contains("BYPASSRLS"), "{message}");
}

#[tokio::test]
async fn a_replica_url_pointing_at_a_primary_is_used_with_a_warning() {
    let shared = shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let warnings = Warnings::capture();
    let pool = routing_pool(
        &fixture,
        options(&fixture, &[]).replica(fixture.db.runtime_url().clone()),
    )
    .await;
    assert_eq!(pool.replica_status()[0].in_recovery, Some(false));
    assert_eq!(warnings.count("not in recovery"), 1, "{}", warnings.text());
    let tx = pool.read(&fixture.a.scope).await.expect("read");
    assert_eq!(tx.served_by(), ServedBy::Replica, "used all the same");
    tx.commit().await.expect("commit");
    let standby = routing_pool(&fixture, options(&fixture, &[one])).await;
    assert_eq!(standby.replica_status()[0].in_recovery, Some(true));
    assert_eq!(
        warnings.count("not in recovery"),
        1,
        "a real standby is not warned about"
    );
}

#[tokio::test]
async fn a_write_whose_connection_is_lost_during_commit_is_not_sent_again_and_says_so() {
    let shared = shared().await;
    let fixture = two_tenants(&shared.cluster, &[]).await;
    let pool = routing_pool(&fixture, options(&fixture, &[])).await;
    let mut tx = pool.begin(&fixture.a.scope).await.expect("write");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **tx)
        .await
        .expect("pid");
    sqlx::query("UPDATE app.subtasks SET name = 'maybe written' WHERE id = $1")
        .bind(fixture.a.subtask)
        .execute(&mut **tx)
        .await
        .expect("update");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 10000)")
        .bind(pid)
        .fetch_one(&fixture.admin)
        .await
        .expect("terminate the write's backend");
    assert!(ended);
    let committed = tx.commit().await;
    assert!(
        matches!(committed, Err(DbError::CommitOutcomeUnknown { .. })),
        "{committed:?}"
    );
    let name: String = sqlx::query_scalar("SELECT name FROM app.subtasks WHERE id = $1")
        .bind(fixture.a.subtask)
        .fetch_one(&fixture.admin)
        .await
        .expect("read back");
    assert_eq!(
        name, "subtask of tenant-a",
        "the lost transaction was not sent again on another connection"
    );
    pool.begin(&fixture.a.scope)
        .await
        .expect("the pool carries on")
        .commit()
        .await
        .expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_port_is_closed_is_marked_down_by_the_read_that_meets_it_without_the_acquire_timeout()
 {
    let cluster = ReplicatedCluster::start(&[None, None])
        .await
        .expect("replicated cluster");
    let [gone, kept] = [&cluster.standbys()[0], &cluster.standbys()[1]];
    let fixture = two_tenants(&cluster, &[gone, kept]).await;
    // An acquire timeout far beyond the bound below, and no background poll (it would find
    // the server gone first): the read finishes in time only if the refused connection
    // attempt marks the replica down at once.
    let patient = RoutingOptions::new(
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .acquire_timeout(Duration::from_secs(600)),
    )
    .poll_interval(Duration::from_secs(3600))
    .check_interval(Duration::from_secs(3600));
    let options = [gone, kept].iter().fold(patient, |options, standby| {
        options.replica(standby.url_for(fixture.db.runtime_url()).expect("url"))
    });
    let pool = routing_pool(&fixture, options).await;
    let mut warm = BTreeMap::new();
    for _ in 0..2 {
        let port = read_once(&pool, &fixture.a.scope, Duration::ZERO)
            .await
            .expect("a read before the stop");
        *warm.entry(port).or_insert(0) += 1;
    }
    assert_eq!(
        warm,
        BTreeMap::from([(i32::from(gone.port()), 1), (i32::from(kept.port()), 1)]),
        "each replica served one read and keeps its connection"
    );

    // Its sessions end and its port closes: its idle connection is dead, a new one refused.
    tokio::task::block_in_place(|| gone.stop()).expect("stop a standby");
    let reads = tokio::time::timeout(Duration::from_secs(60), async {
        let mut ports = Vec::new();
        for _ in 0..2 {
            ports.push(read_once(&pool, &fixture.a.scope, Duration::ZERO).await);
        }
        ports
    })
    .await
    .expect("the reads did not wait for the 600 s acquire timeout");
    for read in reads {
        assert_eq!(
            read.expect("no read failed"),
            i32::from(kept.port()),
            "the other replica served"
        );
    }
    let status = pool.replica_status();
    assert!(
        !status[0].up && status[1].up,
        "the stopped replica is marked down, the other is up: {status:?}"
    );
}
