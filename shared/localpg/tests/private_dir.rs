//! The local cluster starts where a new user's checkout is: under a directory of mode 0700 (what
//! `/root` and `mktemp -d` are), which the `postgres` user running the server as root cannot
//! traverse (first-contact issue, item 1). Deleting the requested directory means a fresh cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;

use platform_localpg::LocalPostgres;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_cluster_under_a_private_directory_starts_and_a_deleted_directory_starts_afresh() {
    let base = std::env::temp_dir().join(format!("localpg-private-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    let requested = base.join("checkout").join("pg");
    let port = free_port();

    let pg = LocalPostgres::new(&requested, port).unwrap();
    let started = pg.start(true);
    assert!(started.is_ok(), "{started:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the server listens on {port}");
    let root = std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    assert_eq!(pg.relocated(), root, "as root the server runs as `postgres`, which cannot reach a 0700 directory");
    if pg.relocated() {
        let note = std::fs::read_to_string(requested.join("LOCATION")).unwrap();
        assert!(note.starts_with(&pg.dir.display().to_string()), "{note}");
    }
    let left = pg.dir.join("data").join("left-by-the-first-run");
    std::fs::write(&left, "x").unwrap();
    pg.stop().unwrap();

    // `rm -rf` of the requested directory, as `make clean` and `make test` do.
    std::fs::remove_dir_all(base.join("checkout")).unwrap();
    let again = LocalPostgres::new(&requested, port).unwrap();
    assert_eq!(again.dir, pg.dir, "the same requested path maps to the same place");
    again.start(true).unwrap();
    assert!(!left.exists(), "a deleted requested directory gives a fresh cluster");
    again.stop().unwrap();
    std::fs::remove_dir_all(&base).unwrap();
    if again.relocated() {
        std::fs::remove_dir_all(&again.dir).unwrap();
    }
}
