//! Engine throughput: a whole login → token → refresh → logout cycle, and the replay
//! of the whole `specs/` corpus. Run with `cargo bench -p tessera-tests --bench engine`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tessera_engine::transcript::{Transcript, run_text};
use tessera_engine::{
    Config, Effect, Endpoints, Engine, Input, LoginMethod, RequestId, UnixMillis, WaiterId,
};

const START: u64 = 1_700_000_000_000;

fn config() -> Config {
    Config {
        scopes: vec!["offline_access".into()],
        endpoints: Endpoints {
            authorization: Some("https://op.example/authorize".into()),
            token: Some("https://op.example/token".into()),
            revocation: Some("https://op.example/revoke".into()),
            ..Endpoints::default()
        },
        ..Config::new("https://op.example", "tessera-cli")
    }
}

fn ok(id: RequestId, body: &str) -> Input {
    Input::HttpResponse {
        id,
        status: 200,
        headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
        body: body.into(),
    }
}

fn last_request(engine: &mut Engine) -> (Option<RequestId>, Option<String>) {
    let mut id = None;
    let mut url = None;
    while let Some(effect) = engine.poll_effect() {
        match effect {
            Effect::Http(request) => id = Some(request.id),
            Effect::OpenBrowser { url: u } => url = Some(u),
            _ => {}
        }
    }
    (id, url)
}

/// One full cycle; returns the number of effects drained, so nothing is optimised away.
fn cycle(seed: [u8; 32]) -> usize {
    let mut now = UnixMillis(START);
    let mut engine = Engine::new(config(), seed, now);
    let handle = |engine: &mut Engine, now: UnixMillis, input: Input| {
        engine.handle(now, input).expect("accepted");
        last_request(engine)
    };
    handle(&mut engine, now, Input::SessionLoaded { session: None });
    let login = Input::Login {
        method: LoginMethod::Browser,
        redirect_uri: Some("http://127.0.0.1:49152/callback".into()),
    };
    let (_, url) = handle(&mut engine, now, login);
    let url = url.expect("authorization URL");
    let state = url
        .split("state=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default();
    let callback = format!("http://127.0.0.1:49152/callback?code=c&state={state}");
    let (id, _) = handle(&mut engine, now, Input::Callback { url: callback });
    let tokens =
        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#;
    handle(&mut engine, now, ok(id.expect("exchange"), tokens));
    handle(
        &mut engine,
        now,
        Input::GetToken {
            waiter: WaiterId(1),
            min_ttl_secs: 0,
        },
    );
    now = now.plus_secs(3500);
    handle(
        &mut engine,
        now,
        Input::GetToken {
            waiter: WaiterId(2),
            min_ttl_secs: 0,
        },
    );
    let session = engine.session().cloned();
    let (id, _) = handle(&mut engine, now, Input::SessionLocked { session });
    let rotated =
        r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#;
    handle(&mut engine, now, ok(id.expect("refresh"), rotated));
    engine
        .handle(now, Input::Logout { force: false })
        .expect("accepted");
    let revocations: Vec<RequestId> = std::iter::from_fn(|| engine.poll_effect())
        .filter_map(|effect| match effect {
            Effect::Http(request) => Some(request.id),
            _ => None,
        })
        .collect();
    let mut drained = revocations.len();
    for id in revocations {
        engine.handle(now, ok(id, "")).expect("revocation answer");
        while engine.poll_effect().is_some() {
            drained += 1;
        }
    }
    assert_eq!(engine.state_name(), "logged_out");
    drained
}

fn corpus() -> Vec<(String, String)> {
    tessera_tests::transcripts()
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable transcript");
            (path.display().to_string(), text)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("login_refresh_logout_cycle", |b| {
        b.iter(|| cycle(black_box([9; 32])))
    });
    group.finish();

    let corpus = corpus();
    let mut group = c.benchmark_group("specs");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("replay_corpus_{}_files", corpus.len()), |b| {
        b.iter(|| {
            for (name, text) in &corpus {
                // Correctness is the test suite's job; this measures the work.
                let _ = black_box(run_text(name, text, false));
            }
        })
    });
    group.bench_function("parse_only_corpus", |b| {
        b.iter(|| {
            for (_, text) in &corpus {
                let _ = black_box(toml::from_str::<Transcript>(text));
            }
        })
    });
    group.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
