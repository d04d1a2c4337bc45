//! Job files checked as well as the configuration is: "did you mean" for
//! job keys, fixed values checked at `submit`, Pixiv page URLs for ids,
//! and `urls_file` for `http.files`; through the real binary.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fileserver::FileServer;
use crate::util::{Env, assert_file, bytes};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn unknown_job_keys_get_did_you_mean_and_the_common_keys() {
    let env = Env::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &["http.files", "urls=https://example.org/a", "max_item=3"],
            "unknown key `max_item` for http.files (did you mean `max_items`?)",
        ),
        (&["pixiv.user", "user=11"], "unknown key `user` for pixiv.user (did you mean `user_id`?)"),
        (&["pixiv.bookmarks", "restirct=private"], "(did you mean `restrict`?)"),
        (
            &["http.files", "urls=https://example.org/a", "colour=red"],
            "unknown key `colour` for http.files; it takes: urls, urls_file, headers, forward_headers",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["submit"];
        all.extend_from_slice(args);
        let out = env.cli(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("every job also takes: type, name, save_path, max_items"), "{err}");
    }
    // The same reason when the daemon meets the file.
    env.drop_job("typo", &json!({"type": "http.files", "urls": ["https://example.org/a"], "max_item": 1}));
    let (status, log) = env.run_once(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{log}");
    let reason = std::fs::read_to_string(env.spool.join("failed/1.typo.json.reason")).expect("reason");
    assert!(reason.contains("(did you mean `max_items`?)"), "{reason}");
}

#[test]
fn fixed_values_are_checked_at_submit_and_pixiv_urls_count_as_ids() {
    let env = Env::new();
    let out = env.cli(&["submit", "pixiv.ranking", "mode=daily"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("mode") && err.contains("day, week, month"), "{err}");
    let out = env.cli(&["submit", "pixiv.ranking", "mode=week_r18g", "--name", "r"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let ok: [(&str, &str); 4] = [
        ("pixiv.user", "user_id=https://www.pixiv.net/en/users/11"),
        ("pixiv.illust", "illust_id=https://www.pixiv.net/artworks/126839540"),
        ("pixiv.series", "series_id=https://www.pixiv.net/user/11/series/9082"),
        ("pixiv.novel", "novel_id=https://www.pixiv.net/novel/show.php?id=20"),
    ];
    for (i, (ty, kv)) in ok.iter().enumerate() {
        let name = format!("u{i}");
        let out = env.cli(&["submit", ty, kv, "--name", &name]);
        assert!(out.status.success(), "{ty} {kv}: {}", text(&out.stderr));
    }
    let out = env.cli(&["submit", "pixiv.illust", "illust_id=https://www.pixiv.net/users/11"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is a user page, not an artwork page"), "{}", text(&out.stderr));
}

#[test]
fn http_files_reads_its_urls_from_a_file_inside_input_roots() {
    let server = FileServer::start();
    server.add("/a.bin", bytes(1, 3000));
    server.add("/b.bin", bytes(2, 4000));
    let env = Env::new();
    let inputs = env.dir.path().join("inputs");
    std::fs::create_dir(&inputs).expect("mkdir");
    env.config_defaults(json!({"input_roots": [inputs.display().to_string()]}));
    let list = inputs.join("urls.txt");
    std::fs::write(&list, format!("# two files\n{}\n\n{}\n", server.url("/a.bin"), server.url("/b.bin")))
        .expect("write");
    let out =
        env.cli(&["submit", "http.files", &format!("urls_file={}", list.display()), "--name", "listed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("listed").join("a.bin"), &bytes(1, 3000));
    assert_file(&env.job_dir("listed").join("b.bin"), &bytes(2, 4000));
    // A file outside input_roots is refused at submit.
    let outside = env.dir.path().join("urls.txt");
    std::fs::write(&outside, server.url("/a.bin")).expect("write");
    let out = env.cli(&["submit", "http.files", &format!("urls_file={}", outside.display())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("outside the configured input_roots"), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&env.cli(&["status", "--json"]).stdout).expect("json");
    assert_eq!(rows[0]["state"], "done");
}
