//! The Storm node's STORE against the raw libraries underneath, in the same run:
//!
//! 1. `get` of a 1 KiB value over IPC vs a bare zmq DEALER/ROUTER echo of the same size;
//! 2. committed 1 KiB `put`s per second, 1 and 16 clients, vs bare redb in-process committing one
//!    write per transaction in a database on the same disk;
//! 3. `nodectl storm containerize` / `assemble` of a 20 MB file vs SHA256 over the same bytes.
//!
//! Run: `cargo bench --bench store` (release). Prints medians and ratios.

mod common;

use bitcoin::hashes::{sha256, Hash};
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::storage::stored_id;
use lnpbp_nodes::wire::api::storm::StormMsg;
use lnpbp_nodes::wire::api::{payload_of, Msg, ServiceId};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const GETS: usize = 2_000;
const PUTS: usize = 200;
const CLIENTS: usize = 16;
const FILE: usize = 20_000_000;

fn key(a: u64, b: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..16].copy_from_slice(&b.to_le_bytes());
    k
}

fn client(dir: &Path) -> Client {
    Client::connect(&zmq::Context::new(), &Endpoint::Ipc(dir.join("store"))).unwrap()
}

fn request(c: &mut Client, m: StormMsg) -> Msg {
    c.request(&stored_id(), m.into(), Duration::from_secs(30), |_| ())
        .unwrap()
}

fn bare_echo(ctx: &zmq::Context, endpoint: &str, reply_len: usize) {
    let sock = ctx.socket(zmq::ROUTER).unwrap();
    sock.set_linger(0).unwrap();
    sock.bind(endpoint).unwrap();
    std::thread::spawn(move || {
        let reply = vec![7u8; reply_len];
        while let Ok(f) = sock.recv_multipart(0) {
            let out = [f[0].as_slice(), &f[2], &f[1], &reply];
            if sock.send_multipart(out, 0).is_err() {
                return;
            }
        }
    });
}

/// Microseconds per lock-step `get` of a 1 KiB value.
fn ours_get(c: &mut Client) -> f64 {
    let t = Instant::now();
    for i in 0..GETS {
        let m = StormMsg::Get {
            table: "bench".into(),
            key: key(0, (i % 100) as u64),
        };
        assert!(matches!(request(c, m), Msg::Storm(StormMsg::Value(_))));
    }
    t.elapsed().as_secs_f64() * 1e6 / GETS as f64
}

fn bare_get(sock: &zmq::Socket, frames: &[Vec<u8>; 3]) -> f64 {
    let t = Instant::now();
    for _ in 0..GETS {
        sock.send_multipart(frames, 0).unwrap();
        sock.recv_multipart(0).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e6 / GETS as f64
}

/// Committed puts per second from `clients` clients, each doing `per` sequential puts.
fn ours_puts(dir: &Path, clients: usize, per: usize, round: u64) -> f64 {
    let t = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|n| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || {
                let mut c = client(&dir);
                for i in 0..per {
                    let m = StormMsg::Put {
                        table: "puts".into(),
                        key: key(round * 1000 + n as u64, i as u64),
                        value: vec![n as u8; 1024],
                    };
                    assert!(matches!(request(&mut c, m), Msg::Success(_)));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    (clients * per) as f64 / t.elapsed().as_secs_f64()
}

/// Bare redb: one 1 KiB write per durable transaction.
fn bare_puts(db: &redb::Database, n: usize, round: u64) -> f64 {
    const T: redb::TableDefinition<[u8; 32], &[u8]> = redb::TableDefinition::new("puts");
    let value = vec![1u8; 1024];
    let t = Instant::now();
    for i in 0..n {
        let tx = db.begin_write().unwrap();
        tx.open_table(T)
            .unwrap()
            .insert(key(round, i as u64), value.as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    // On the same disk as the target dir (not tmpfs), so that fsync costs what it costs.
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let dir = tmp.path().join("storm");
    let mut node = common::start_node("storm", &dir, &[]);
    let mut c = client(&dir);
    for i in 0..100 {
        let m = StormMsg::Put {
            table: "bench".into(),
            key: key(0, i),
            value: vec![3u8; 1024],
        };
        request(&mut c, m);
    }

    // 1. get vs a bare echo with a reply of the same size.
    let reply_len = payload_of(1, &StormMsg::Value(vec![3u8; 1024]).into()).len();
    let ctx = zmq::Context::new();
    let bare_ep = format!("ipc://{}", tmp.path().join("bare").display());
    bare_echo(&ctx, &bare_ep, reply_len);
    let sock = ctx.socket(zmq::DEALER).unwrap();
    sock.set_linger(0).unwrap();
    sock.connect(&bare_ep).unwrap();
    let get = StormMsg::Get {
        table: "bench".into(),
        key: key(0, 1),
    };
    let frames = [
        ServiceId::Client(1).to_bytes(),
        stored_id().to_bytes(),
        payload_of(1, &get.into()),
    ];
    bare_get(&sock, &frames);
    ours_get(&mut c);
    let (mut bg, mut og) = (vec![], vec![]);
    for _ in 0..samples {
        bg.push(bare_get(&sock, &frames));
        og.push(ours_get(&mut c));
    }
    let (bg, og) = (common::median(bg), common::median(og));
    println!("STORE get of a 1 KiB value over IPC ({samples} samples x {GETS} lock-step, reply {reply_len} B)");
    println!("  bare zmq DEALER/ROUTER echo : {bg:8.1} us median");
    println!("  STORE get                   : {og:8.1} us median");
    println!(
        "  ratio ours/bare             : {:8.2}x  (target <= 1.5x)",
        og / bg
    );

    // 2. committed puts.
    let put_samples = samples.min(5);
    let db = redb::Database::create(tmp.path().join("bare.redb")).unwrap();
    let (mut bare, mut one, mut many) = (vec![], vec![], vec![]);
    for round in 0..put_samples as u64 {
        bare.push(bare_puts(&db, PUTS, round));
        one.push(ours_puts(&dir, 1, PUTS, round * 2));
        many.push(ours_puts(&dir, CLIENTS, PUTS, round * 2 + 1));
    }
    let (bare, one, many) = (
        common::median(bare),
        common::median(one),
        common::median(many),
    );
    println!("committed 1 KiB puts ({put_samples} samples; {PUTS} puts per client per sample)");
    println!("  bare redb, 1 write per commit : {bare:8.0} puts/s median");
    println!(
        "  STORE put, 1 client           : {one:8.0} puts/s median  ({:.2}x bare)",
        one / bare
    );
    println!(
        "  STORE put, {CLIENTS} clients          : {many:8.0} puts/s median  ({:.2}x bare, target >= 2x)",
        many / bare
    );

    // 3. containers vs SHA256 over the same bytes.
    let file = tmp.path().join("file.bin");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let content: Vec<u8> = (0..FILE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&file, &content).unwrap();
    let out = tmp.path().join("out.bin");
    let (mut sha, mut cz, mut asm) = (vec![], vec![], vec![]);
    let mb = FILE as f64 / 1e6;
    for _ in 0..samples.min(3) {
        let t = Instant::now();
        std::hint::black_box(sha256::Hash::hash(&content));
        sha.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let v: serde_json::Value = serde_json::from_str(&common::storm_cli(
            &dir,
            &["containerize", file.to_str().unwrap()],
        ))
        .unwrap();
        cz.push(mb / t.elapsed().as_secs_f64());
        let id = v["container_id"].as_str().unwrap().to_string();
        let t = Instant::now();
        common::storm_cli(&dir, &["assemble", &id, out.to_str().unwrap()]);
        asm.push(mb / t.elapsed().as_secs_f64());
        std::fs::remove_file(&out).unwrap();
    }
    let (sha, cz, asm) = (common::median(sha), common::median(cz), common::median(asm));
    println!("containers of a 20 MB file (nodectl storm, process start included)");
    println!("  SHA256 over the bytes  : {sha:8.1} MB/s median");
    println!(
        "  containerize           : {cz:8.1} MB/s median  ({:.2}x SHA256)",
        cz / sha
    );
    println!(
        "  assemble               : {asm:8.1} MB/s median  ({:.2}x SHA256)",
        asm / sha
    );

    let _ = Command::new("kill").arg(node.id().to_string()).status();
    let _ = node.wait();
}
