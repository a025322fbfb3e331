//! A registry lookup behind a transaction-mode pooler runs in `BEGIN READ ONLY` ... `COMMIT`;
//! one cut off while its `BEGIN` was under way must not hand its connection on inside that
//! transaction. A proxy between the pool and the server holds the server's answers back, so
//! the test cuts the lookup off after its `BEGIN` reached the server and before the answer
//! came back: the window a request deadline can hit behind pgbouncer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rls_tenancy::{RegistryOptions, ScratchDatabase, TenancyDeclaration, TenantRegistry};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// A TCP proxy to the database that passes everything on, notes when a client sent
/// `BEGIN READ ONLY`, and can hold the server's answers back.
struct HoldingProxy {
    addr: SocketAddr,
    hold: watch::Sender<bool>,
    begin_sent: Arc<Notify>,
}

impl HoldingProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (hold, _) = watch::channel(false);
        let begin_sent = Arc::new(Notify::new());
        let (gate, seen) = (hold.clone(), Arc::clone(&begin_sent));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream.as_str())
                    .await
                    .expect("upstream");
                tokio::spawn(relay(client, server, gate.subscribe(), Arc::clone(&seen)));
            }
        });
        Self {
            addr,
            hold,
            begin_sent,
        }
    }

    fn hold(&self, on: bool) {
        self.hold.send_replace(on);
    }
}

/// Copies client to server (noting a `BEGIN READ ONLY`) and server to client (waiting while
/// `hold` is on), until either side closes.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    mut hold: watch::Receiver<bool>,
    begin_sent: Arc<Notify>,
) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = client_in.read(&mut buf).await {
            if server_out.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if buf[..n].windows(15).any(|w| w == b"BEGIN READ ONLY") {
                begin_sent.notify_one();
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = server_in.read(&mut buf).await {
            if hold.wait_for(|held| !held).await.is_err()
                || client_out.write_all(&buf[..n]).await.is_err()
            {
                break;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Whether the pool's next connection is outside any transaction: a connection handed on
/// inside the cut-off lookup's `BEGIN READ ONLY` answers `on`.
async fn next_connection_read_only(pool: &PgPool) -> String {
    let mut conn = pool.acquire().await.expect("a connection");
    sqlx::raw_sql("SHOW transaction_read_only")
        .fetch_one(&mut *conn)
        .await
        .expect("SHOW")
        .try_get(0)
        .expect("text")
}

/// Waits (bounded) until the pool's one connection is back in it: sqlx pings a released
/// connection before it is idle again, and that answer must not be held.
async fn idle_again(pool: &PgPool) {
    for _ in 0..1_000 {
        if pool.num_idle() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the connection did not come back to the pool");
}

#[tokio::test]
async fn a_lookup_cut_off_mid_begin_behind_a_pooler_hands_on_no_transaction() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin pool");
    sqlx::query("INSERT INTO app.accounts (slug, name) VALUES ('first', 'First')")
        .execute(&admin)
        .await
        .expect("a tenant");
    let options = db.runtime_url().connect_options().expect("options");
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = HoldingProxy::start(upstream).await;
    // As the tenant pool's: no ping before a connection is handed out (it would wait for
    // a held answer).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.host("127.0.0.1").port(proxy.addr.port()))
        .await
        .expect("a pool through the proxy");
    let registry = || {
        TenantRegistry::new(
            pool.clone(),
            &TenancyDeclaration::reference().expect("declaration"),
            RegistryOptions::default().listen(false),
        )
        .behind_pooler()
    };
    assert_eq!(
        next_connection_read_only(&pool).await,
        "off",
        "a clean start"
    );
    idle_again(&pool).await;

    proxy.hold(true);
    let cut = registry();
    let lookup = tokio::spawn(async move { cut.resolve(&"first".parse().expect("slug")).await });
    tokio::time::timeout(Duration::from_secs(30), proxy.begin_sent.notified())
        .await
        .expect("the lookup sends its BEGIN");
    lookup.abort();
    assert!(
        lookup.await.is_err_and(|e| e.is_cancelled()),
        "cut off before its BEGIN was answered"
    );
    proxy.hold(false);

    assert_eq!(
        next_connection_read_only(&pool).await,
        "off",
        "the next user of the pool is outside the cut-off lookup's transaction"
    );
    let scope = registry()
        .resolve(&"first".parse().expect("slug"))
        .await
        .expect("the lookup works again");
    assert_eq!(scope.slug().as_str(), "first");
}
