//! A fake remote-task service (loopback only), the shape of the task APIs
//! that image services offer: create a task, poll it, download a result.
//!
//! `POST /api/tasks` (form `name=`) creates a task and answers
//! `{"task_id"}`; `GET /api/tasks?name=` lists an input's tasks;
//! `GET /api/tasks/<id>` answers `processing` for the first `polls` looks,
//! then `done` with a `result_url` under `/results/`. Fault knobs: the
//! answer of a create can be dropped after the task was made (the
//! connection closes mid-answer), and a task can fail.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::http::{Body, Handler, Request, Response, Server, lock};

/// The content of a task's result.
pub fn result_of(name: &str) -> Vec<u8> {
    format!("result of {name}\n").repeat(100).into_bytes()
}

#[derive(Default)]
struct State {
    /// task id → (input name, looks so far).
    tasks: HashMap<String, (String, usize)>,
    /// Creates per input name.
    creates: HashMap<String, usize>,
    /// Inputs whose first create answer is dropped.
    drop_answer: HashSet<String>,
    /// Inputs whose task fails.
    failing: HashSet<String>,
    /// Inputs whose create answers are held back this long (after the
    /// task was made).
    stall_create: HashMap<String, std::time::Duration>,
    /// Requests seen: (method, path).
    log: Vec<(String, String)>,
}

/// The running fake.
pub struct FakeTasks {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeTasks {
    /// Starts the fake; a task is `processing` for `polls` looks.
    pub fn start(polls: usize) -> FakeTasks {
        let state = Arc::new(Mutex::new(State::default()));
        let s = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| answer(&s, polls, req));
        FakeTasks { server: Server::start(handler), state }
    }

    /// The base URL.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Drops the answer of the first create for `name` (after making it).
    pub fn drop_create_answer(&self, name: &str) {
        lock(&self.state).drop_answer.insert(name.to_string());
    }

    /// Holds back the answer of every create for `name` for `d`, after
    /// the task was made (a client killed meanwhile never learns its id).
    pub fn stall_create(&self, name: &str, d: std::time::Duration) {
        lock(&self.state).stall_create.insert(name.to_string(), d);
    }

    /// Makes the task of `name` fail.
    pub fn fail(&self, name: &str) {
        lock(&self.state).failing.insert(name.to_string());
    }

    /// How many tasks were created for `name`.
    pub fn creates(&self, name: &str) -> usize {
        lock(&self.state).creates.get(name).copied().unwrap_or(0)
    }

    /// Every request so far, as (method, path).
    pub fn log(&self) -> Vec<(String, String)> {
        lock(&self.state).log.clone()
    }
}

fn answer(state: &Mutex<State>, polls: usize, req: &Request) -> Response {
    let mut s = lock(state);
    s.log.push((req.method.clone(), req.path.clone()));
    let path = req.path_only().to_string();
    if req.method == "POST" && path == "/api/tasks" {
        let body = req.body_text();
        let name = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("name="))
            .map(crate::support::http::percent_decode)
            .unwrap_or_default();
        let n = s.creates.entry(name.clone()).or_insert(0);
        *n += 1;
        let id = format!("t{}-{}", s.tasks.len() + 1, name);
        s.tasks.insert(id.clone(), (name.clone(), 0));
        let resp = Response::json(200, &json!({"task_id": id}).to_string());
        if s.drop_answer.remove(&name) {
            return resp.truncate_after(2);
        }
        if let Some(d) = s.stall_create.get(&name) {
            return resp.stall(0, *d);
        }
        return resp;
    }
    if req.method == "GET" && path == "/api/tasks" {
        let name = req.query("name").unwrap_or_default();
        let tasks: Vec<_> =
            s.tasks.iter().filter(|(_, (n, _))| *n == name).map(|(id, _)| json!({"task_id": id})).collect();
        return Response::json(200, &json!({"tasks": tasks}).to_string());
    }
    if let Some(id) = path.strip_prefix("/api/tasks/") {
        let failing = s.failing.clone();
        let Some((name, looks)) = s.tasks.get_mut(id) else {
            return Response::json(404, r#"{"error":"no such task"}"#);
        };
        *looks += 1;
        if failing.contains(name.as_str()) {
            return Response::json(
                200,
                &json!({"state": "failed", "error": "the input is not an image"}).to_string(),
            );
        }
        if *looks <= polls {
            return Response::json(200, r#"{"state":"processing"}"#);
        }
        let url = format!("http://{}/results/{id}.bin", req.header("host").unwrap_or_default());
        return Response::json(200, &json!({"state": "done", "result_url": url}).to_string());
    }
    if let Some(file) = path.strip_prefix("/results/") {
        let id = file.trim_end_matches(".bin");
        if let Some((name, _)) = s.tasks.get(id) {
            return Response::new(200).with_body(Body::Bytes(result_of(name)));
        }
    }
    Response::new(404)
}
