//! Block download and indexing from a real peer: a release `nodectl` BP node is told
//! `btc_connect` to a bcoin node with N blocks of transactions and timed until its index
//! reaches the tip (headers, block download over a window, the block checks, the durable
//! index commits). In the same run, two floors: the same blocks decoded and merkle-checked
//! in-process with the `bitcoin` crate alone (the work's floor), and pulled from the same bcoin
//! by a bare P2P client on the `bitcoin` crate with as many requests in flight (the peer's
//! floor). Then `get_tx` round trips against `info`, and the index's bytes per transaction.
//!
//! Run: `cargo bench --bench block_index` (release; needs tests/js/node_modules, see .ci/run).
//! `BENCH_INDEX_BLOCKS` (default 2,000), `BENCH_INDEX_TXS` (payments per block, default 2),
//! `BENCH_SAMPLES` (default 3).

mod common;

use bitcoin::consensus::{deserialize, encode, Decodable};
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Address, Magic, ServiceFlags};
use bitcoin::{Block, BlockHash, Network, Txid};
use common::bcoin::{free_pair, Bcoin};
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::bp::BpMsg;
use lnpbp_nodes::wire::api::{Detail, Msg, ServiceId};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn indexed_to(c: &mut Client) -> Option<u64> {
    match common::bp_detail(c, "indexed")? {
        Detail::Text(t) => t.split("..=").nth(1)?.parse().ok(),
        _ => None,
    }
}

/// Our node from empty to indexed at `n`: seconds.
fn ours(source: &str, n: u64, dir: &std::path::Path) -> f64 {
    let mut node = common::start_node("bp", dir, &["--network", "regtest"]);
    let ctx = zmq::Context::new();
    let mut c = Client::connect(&ctx, &Endpoint::Ipc(dir.join("api"))).unwrap();
    let t = Instant::now();
    let connect = BpMsg::BtcConnect {
        addr: source.into(),
    };
    c.request(
        &ServiceId::Bpd,
        connect.into(),
        Duration::from_secs(30),
        |_| {},
    )
    .expect("connect");
    while indexed_to(&mut c) != Some(n) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = node.kill();
    let _ = node.wait();
    secs
}

fn send(s: &mut TcpStream, m: NetworkMessage) {
    let raw = RawNetworkMessage::new(Magic::from(Network::Regtest), m);
    s.write_all(&encode::serialize(&raw)).unwrap();
}

/// A bare P2P client pulling `hashes` from `source`, 16 in flight: seconds (blocks decoded).
fn bare_pull(source: &str, hashes: &[BlockHash]) -> f64 {
    let mut s = TcpStream::connect(source).unwrap();
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s.try_clone().unwrap());
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let v = VersionMessage::new(
        ServiceFlags::WITNESS,
        0,
        Address::new(&any, ServiceFlags::NONE),
        Address::new(&any, ServiceFlags::NONE),
        7,
        "/bench:0/".into(),
        0,
    );
    let t = Instant::now();
    send(&mut s, NetworkMessage::Version(v));
    let (mut version, mut verack) = (false, false);
    while !(version && verack) {
        match RawNetworkMessage::consensus_decode(&mut r)
            .unwrap()
            .payload()
        {
            NetworkMessage::Version(_) => {
                version = true;
                send(&mut s, NetworkMessage::Verack);
            }
            NetworkMessage::Verack => verack = true,
            _ => {}
        }
    }
    let (mut asked, mut got) = (0, 0);
    while got < hashes.len() {
        while asked < hashes.len() && asked - got < 16 {
            send(
                &mut s,
                NetworkMessage::GetData(vec![Inventory::WitnessBlock(hashes[asked])]),
            );
            asked += 1;
        }
        match RawNetworkMessage::consensus_decode(&mut r)
            .unwrap()
            .payload()
        {
            NetworkMessage::Block(b) => {
                std::hint::black_box(b);
                got += 1;
            }
            NetworkMessage::Ping(n) => send(&mut s, NetworkMessage::Pong(*n)),
            _ => {}
        }
    }
    t.elapsed().as_secs_f64()
}

/// The in-process floor: decode and merkle-check (and witness-commitment-check) every block.
fn floor(raw: &[Vec<u8>]) -> f64 {
    let t = Instant::now();
    for r in raw {
        let b: Block = deserialize(r).unwrap();
        assert!(b.check_merkle_root() && b.check_witness_commitment());
        std::hint::black_box(b);
    }
    t.elapsed().as_secs_f64()
}

fn round_trips(c: &mut Client, txids: &[Txid], reps: usize) -> (f64, f64) {
    let (mut tx, mut info) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let txid = txids[i % txids.len()];
        let t = Instant::now();
        let get = BpMsg::GetTx {
            txid: txid.to_byte_array(),
        };
        let r = c.request(&ServiceId::Bpd, get.into(), Duration::from_secs(10), |_| {});
        assert!(
            matches!(r, Ok(Msg::Bp(BpMsg::TxInfo(ref i))) if i.tx.is_some()),
            "{r:?}"
        );
        tx.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        c.request(
            &ServiceId::Bpd,
            Msg::GetInfo,
            Duration::from_secs(5),
            |_| {},
        )
        .unwrap();
        info.push(t.elapsed().as_secs_f64() * 1e6);
    }
    (common::median(tx), common::median(info))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let n = env("BENCH_INDEX_BLOCKS", 2_000);
    let k = env("BENCH_INDEX_TXS", 2);
    let samples = common::samples(3);
    let mut source = Bcoin::start(free_pair(), 0);
    let filled = source.cmd(&format!("fill {n} {k}"));
    assert!(filled.get("error").is_none(), "bcoin: {filled}");
    let addr = format!("127.0.0.1:{}", source.port);
    let mut hashes = Vec::new();
    let mut raw = Vec::new();
    for h in 1..=n {
        let hash: BlockHash = source.cmd(&format!("hash {h}"))["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let hex = source.cmd(&format!("block {hash}"))["hex"]
            .as_str()
            .unwrap()
            .to_string();
        raw.push(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>(),
        );
        hashes.push(hash);
    }
    let blocks: Vec<Block> = raw.iter().map(|r| deserialize(r).unwrap()).collect();
    let txs: usize = 1 + blocks.iter().map(|b| b.txdata.len()).sum::<usize>();
    let bytes: usize = raw.iter().map(Vec::len).sum();

    let (mut o, mut f, mut p) = (Vec::new(), Vec::new(), Vec::new());
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let mut last_dir = None;
    for i in 0..samples {
        let dir = tmp.path().join(format!("bp{i}"));
        o.push(ours(&addr, n, &dir));
        f.push(floor(&raw));
        p.push(bare_pull(&addr, &hashes));
        last_dir = Some(dir);
    }
    let (o, f, p) = (common::median(o), common::median(f), common::median(p));
    println!(
        "index {n} regtest blocks, {txs} transactions, {:.1} MB, from bcoin over loopback \
         ({samples} samples, medians)",
        bytes as f64 / 1e6
    );
    println!(
        "  in-process decode + merkle check (floor) : {f:8.4} s   ({:.0} blocks/s, {:.0} tx/s)",
        n as f64 / f,
        txs as f64 / f
    );
    println!(
        "  bare P2P pull from bcoin, 16 in flight   : {p:8.4} s   ({:.0} blocks/s, {:.0} tx/s)",
        n as f64 / p,
        txs as f64 / p
    );
    println!(
        "  our BP node, connect to indexed tip      : {o:8.4} s   ({:.0} blocks/s, {:.0} tx/s)",
        n as f64 / o,
        txs as f64 / o
    );
    println!(
        "  ratio ours/floor (rate)                  : {:8.3}x",
        f / o
    );
    println!(
        "  ratio ours/bare pull (rate)              : {:8.3}x",
        p / o
    );

    // get_tx against info on the last node, restarted without peers first (cold: every block
    // fetched from bcoin), then warm (the recent blocks in memory).
    let dir = last_dir.unwrap();
    let file = dir.join("index-regtest.redb");
    let size = std::fs::metadata(&file).unwrap().len();
    let mut node = common::start_node("bp", &dir, &["--network", "regtest", "--connect", &addr]);
    let ctx = zmq::Context::new();
    let mut c = Client::connect(&ctx, &Endpoint::Ipc(dir.join("api"))).unwrap();
    while common::bp_detail(&mut c, "peers") != Some(Detail::U64(1)) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let picks: Vec<Txid> = blocks
        .iter()
        .step_by((blocks.len() / 200).max(1))
        .map(|b| b.txdata.last().unwrap().compute_txid())
        .collect();
    let (cold, info_cold) = round_trips(&mut c, &picks, picks.len());
    let (warm, info_warm) = round_trips(&mut c, &picks, 1_000);
    let _ = node.kill();
    let _ = node.wait();
    println!(
        "get_tx round trip over IPC ({} distinct mined txids; medians)",
        picks.len()
    );
    println!("  get_tx, block fetched from bcoin (cold)  : {cold:8.1} us   info {info_cold:.1} us   ratio {:.2}x", cold / info_cold);
    println!("  get_tx, block in memory (warm)           : {warm:8.1} us   info {info_warm:.1} us   ratio {:.2}x", warm / info_warm);
    println!(
        "index on disk: {size} bytes for {txs} transactions = {:.0} bytes/tx (file size, redb)",
        size as f64 / txs as f64
    );
}
