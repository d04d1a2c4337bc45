//! Files the server names (`Content-Disposition`), one attempt at a time
//! (`download::fetch` with a job's `NameLog`): the name taken, collisions,
//! hostile values, and a restart after the rename that must not fetch or
//! save the file again.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spoolfetch::download::{DownloadTask, NameLog, Outcome, fetch};
use tempfile::TempDir;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{assert_file, bytes, test_agent as agent};

/// A task for item `item` of a job whose names are logged in `state`.
fn task(url: &str, dest: &Path, item: u64, state: &Path, server_name: bool) -> DownloadTask {
    DownloadTask {
        item,
        server_name,
        names: Some(Arc::new(NameLog::open(state).expect("name log"))),
        ..crate::util::download_task(url, dest, Duration::from_secs(5))
    }
}

/// Names in `dir`, sorted, hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn dirs() -> (TempDir, TempDir, PathBuf) {
    let out = tempfile::tempdir().expect("dir");
    let state = tempfile::tempdir().expect("dir");
    let dest = out.path().join("file-0");
    (out, state, dest)
}

#[test]
fn the_server_names_the_file_and_a_restart_after_the_rename_fetches_nothing() {
    let server = FileServer::start();
    let body = bytes(1, 40_000);
    server.add("/get", body.clone());
    server.set_disposition("/get", "attachment; filename=\"report.pdf\"");
    let (out, state, dest) = dirs();
    let o = fetch(&agent(), &task(&server.url("/get?id=3"), &dest, 0, state.path(), true));
    let want = out.path().join("report.pdf");
    assert_eq!(o, Outcome::Done { bytes: body.len() as u64, already: false, saved_as: Some(want.clone()) });
    assert_file(&want, &body);
    assert_eq!(names(out.path()), ["report.pdf"], "no provisional file, no .part left");
    // A crash after the rename but before the journal recorded the item:
    // the restart reads the name log again and finds the file.
    let o = fetch(&agent(), &task(&server.url("/get?id=3"), &dest, 0, state.path(), true));
    assert_eq!(o, Outcome::Done { bytes: 0, already: true, saved_as: Some(want) });
    assert_eq!(server.hits("/get"), 1, "fetched a second time");
    assert_eq!(names(out.path()), ["report.pdf"], "no `report-0.pdf` duplicate");
}

#[test]
fn a_taken_name_gets_the_item_suffix_and_the_users_file_is_kept() {
    let server = FileServer::start();
    let body = bytes(2, 5000);
    server.add("/get", body.clone());
    server.set_disposition("/get", "inline; FILENAME*=UTF-8''%E6%8A%A5%E5%91%8A.txt; filename=\"r.txt\"");
    let (out, state, _) = dirs();
    fs::write(out.path().join("报告.txt"), b"the user's own").expect("user file");
    let dest = out.path().join("file-7");
    let o = fetch(&agent(), &task(&server.url("/get"), &dest, 7, state.path(), true));
    let want = out.path().join("报告-7.txt");
    assert_eq!(o, Outcome::Done { bytes: 5000, already: false, saved_as: Some(want.clone()) });
    assert_file(&want, &body);
    assert_file(&out.path().join("报告.txt"), b"the user's own");
    // The same bytes under the wanted name are that file: a job run again
    // into its folder saves nothing twice.
    let (out2, state2, _) = dirs();
    fs::write(out2.path().join("报告.txt"), &body).expect("same bytes");
    let o = fetch(&agent(), &task(&server.url("/get"), &out2.path().join("file-7"), 7, state2.path(), true));
    assert_eq!(
        o,
        Outcome::Done { bytes: 5000, already: false, saved_as: Some(out2.path().join("报告.txt")) }
    );
    assert_eq!(names(out2.path()), ["报告.txt"]);
}

#[test]
fn hostile_or_unusable_names_stay_in_the_folder_or_fall_back() {
    let server = FileServer::start();
    let cases = [
        ("attachment; filename=\"../../etc/passwd\"", "___.._etc_passwd"),
        ("attachment; filename=\"a/b\"", "a_b"),
        ("attachment; filename=\"\"", "file-0"),
        ("attachment; filename*=UTF-8''bad%zz.txt", "file-0"),
        ("attachment; filename*=UTF-8''nul%00.txt", "nul_.txt"),
        ("attachment", "file-0"),
    ];
    for (k, (value, want)) in cases.iter().enumerate() {
        let path = format!("/h{k}");
        let body = bytes(10 + k as u64, 1000);
        server.add(&path, body.clone());
        server.set_disposition(&path, value);
        let (out, state, dest) = dirs();
        let o = fetch(&agent(), &task(&server.url(&path), &dest, 0, state.path(), true));
        assert!(matches!(o, Outcome::Done { already: false, .. }), "{value}: {o:?}");
        assert_eq!(names(out.path()), [*want], "{value}");
        assert_file(&out.path().join(want), &body);
    }
    let long = format!("attachment; filename*=UTF-8''{}.pdf", "%E6%96%87".repeat(120));
    server.add("/long", bytes(3, 10));
    server.set_disposition("/long", &long);
    let (out, state, dest) = dirs();
    let o = fetch(&agent(), &task(&server.url("/long"), &dest, 0, state.path(), true));
    assert!(matches!(o, Outcome::Done { .. }), "{o:?}");
    let got = names(out.path());
    assert!(got.len() == 1 && got[0].ends_with(".pdf") && got[0].len() <= 255 - 11, "{got:?}");
}

#[test]
fn a_url_named_task_keeps_its_name_and_never_takes_another_items() {
    let server = FileServer::start();
    server.add("/x.bin", bytes(4, 3000));
    // Only a task that lets the server name its file reads the header.
    server.set_disposition("/x.bin", "attachment; filename=\"other.bin\"");
    server.add("/get", bytes(5, 2000));
    server.set_disposition("/get", "attachment; filename=\"y.bin\"");
    let (out, state, _) = dirs();
    let x = out.path().join("x.bin");
    let o = fetch(&agent(), &task(&server.url("/x.bin"), &x, 0, state.path(), false));
    assert_eq!(o, Outcome::Done { bytes: 3000, already: false, saved_as: None });
    // Item 1 is named `y.bin` by the server; item 2 planned `y.bin` from
    // its URL and must not count item 1's file as its own.
    let o = fetch(&agent(), &task(&server.url("/get"), &out.path().join("file-1"), 1, state.path(), true));
    assert_eq!(o, Outcome::Done { bytes: 2000, already: false, saved_as: Some(out.path().join("y.bin")) });
    server.add("/y.bin", bytes(6, 1500));
    let o = fetch(&agent(), &task(&server.url("/y.bin"), &out.path().join("y.bin"), 2, state.path(), false));
    assert_eq!(o, Outcome::Done { bytes: 1500, already: false, saved_as: Some(out.path().join("y-2.bin")) });
    assert_file(&out.path().join("y.bin"), &bytes(5, 2000));
    assert_file(&out.path().join("y-2.bin"), &bytes(6, 1500));
}

#[test]
fn a_resumed_large_file_keeps_the_servers_name() {
    let server = FileServer::start();
    let body = bytes(7, 3 << 20);
    server.add("/get", body.clone());
    server.set_disposition("/get", "attachment; filename=\"big.iso\"");
    server.add_fault("/get", Fault::Truncate(1_500_000), 1);
    let (out, state, dest) = dirs();
    let t = task(&server.url("/get"), &dest, 0, state.path(), true);
    assert!(matches!(fetch(&agent(), &t), Outcome::Retry { .. }));
    // The partial stays under the provisional name until the end.
    assert!(names(out.path()).iter().all(|n| n.starts_with(".file-0.part")), "{:?}", names(out.path()));
    let o = fetch(&agent(), &t);
    let want = out.path().join("big.iso");
    assert!(matches!(&o, Outcome::Done { saved_as: Some(p), .. } if *p == want), "{o:?}");
    assert_file(&want, &body);
    assert_eq!(names(out.path()), ["big.iso"]);
}
