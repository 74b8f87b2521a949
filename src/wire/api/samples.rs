//! One valid message of every type id of the API, generic and per node: the round-trip tests
//! of each message set, the fuzz seeds and the API contract test (`tests/api_contract.rs`, which
//! sends each of them to every node's manager) use them.
//!
//! Each set's list is checked twice: a `match` without a wildcard fails to compile when a
//! variant is added without a sample here, and [`covers`] checks one sample per declared type
//! id. The values are small and harmless on a live node: addresses are loopback ports that
//! refuse (`127.0.0.1:1`), node ids are not connected peers.

use crate::wire::api::bp::{
    AccountBalance, AccountInfo, AddressInfo, BlockQuery, BlockRef, BpMsg, BtcPeerInfo, FeeRate,
    FilteredBlock, PsbtSigned, TxInfo, TxStatus, WalletSent, WalletTx, WalletUtxo, WatchHit,
    WatchInfo, WatchSynced, WatchTarget,
};
use crate::wire::api::lnp::Protocol;
use crate::wire::api::lnp::{
    AppMessage, ChannelEventInfo, ChannelInfo, Direction, LnpMsg, PaymentRecord, PeerInfo,
    PeerMessage,
};
use crate::wire::api::rgb::{ContractState, NiaIssue, Received, RgbMsg, Validation};
use crate::wire::api::storm::TransferState;
use crate::wire::api::storm::{
    AppInfo, ChatEntry, ContainerInfo, StormMsg, TableInfo, TransferInfo,
};
use crate::wire::api::{
    type_id, Detail, EndpointInfo, Msg, NodeInfo, ServiceEvent, ServiceInfo, ServiceState,
};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ChunkId, Container, ContainerHeader, ContainerId};
use bitcoin::secp256k1::{constants, PublicKey, Secp256k1, SecretKey};

/// The generator point (the key of the secret 1): a valid public key, of no one's node.
fn generator() -> PublicKey {
    let one = SecretKey::from_slice(&constants::ONE).expect("1 is a valid secret key");
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &one)
}

/// The generic messages (0x00xx, 0x01xx).
pub fn generic() -> Vec<Msg> {
    let list = vec![
        Msg::Success(Some("ok".into())),
        Msg::failure(crate::wire::api::code::NO_ROUTE, "nobody"),
        Msg::Progress("half way".into()),
        Msg::Subscribe,
        Msg::Unsubscribe,
        Msg::ServiceEvent(ServiceEvent {
            service: "api-router".into(),
            state: ServiceState::Restarting,
            restarts: 2,
            cause: Some("panic: boom".into()),
        }),
        Msg::GetInfo,
        Msg::NodeInfo(NodeInfo {
            node: "lnp".into(),
            version: "0.1.0".into(),
            network: "signet".into(),
            node_id: NodeId([2; 33]),
            uptime_s: 7,
            endpoints: vec![EndpointInfo {
                bus: "api".into(),
                endpoint: "ipc:///tmp/api".into(),
            }],
            services: vec![ServiceInfo {
                name: "lnpd".into(),
                state: ServiceState::Running,
                restarts: 1,
                last_failure: None,
            }],
            details: vec![
                ("api_version".into(), Detail::U64(2)),
                ("tip_hash".into(), Detail::Text("00ab".into())),
                (
                    "listening".into(),
                    Detail::List(vec!["0.0.0.0:9735".into()]),
                ),
            ],
        }),
        Msg::DebugCrash {
            service: "lnpd".into(),
        },
        Msg::RpcAllow(NodeId([2; 33])),
        Msg::RpcRevoke(NodeId([2; 33])),
        Msg::RpcList,
        Msg::RpcAllowList(vec![NodeId([2; 33])]),
    ];
    for m in &list {
        match m {
            Msg::Success(_)
            | Msg::Failure { .. }
            | Msg::Progress(_)
            | Msg::Subscribe
            | Msg::Unsubscribe
            | Msg::ServiceEvent(_)
            | Msg::GetInfo
            | Msg::NodeInfo(_)
            | Msg::DebugCrash { .. }
            | Msg::RpcAllow(_)
            | Msg::RpcRevoke(_)
            | Msg::RpcList
            | Msg::RpcAllowList(_)
            | Msg::Lnp(_)
            | Msg::Bp(_)
            | Msg::Rgb(_)
            | Msg::Storm(_) => {}
        }
    }
    list
}

/// The LNP Node's messages (0x02xx).
pub fn lnp() -> Vec<Msg> {
    // A valid public key (the generator point), so that `connect` gets as far as dialling.
    let id = NodeId::from(generator());
    let m = PeerMessage {
        node_id: id,
        type_id: 32_769,
        payload: vec![1, 2],
    };
    let a = AppMessage {
        node_id: id,
        app: 0x8001,
        payload: b"hi".to_vec(),
    };
    let p = PaymentRecord {
        hash: [4; 32],
        outbound: true,
        amount_msat: 10_000,
        fee_msat: Some(0),
        status: 1,
        reason: None,
        preimage: Some([5; 32]),
        payee: Some(id),
        created: 1_700_000_000,
        updated: 1_700_000_001,
    };
    let list = vec![
        LnpMsg::Listen {
            addr: "127.0.0.1:0".into(),
        },
        LnpMsg::Connect {
            node_id: id,
            addr: "127.0.0.1:1".into(),
            protocol: Protocol::Lightning,
        },
        LnpMsg::Disconnect {
            node_id: id,
            protocol: Protocol::Lightning,
        },
        LnpMsg::ListPeers,
        LnpMsg::PeerList(vec![PeerInfo {
            node_id: id,
            addr: "127.0.0.1:1".into(),
            direction: Direction::Outbound,
            features: vec![0x02, 0x00],
            connected_since: 1_700_000_000,
            bytes_in: 10,
            bytes_out: 20,
            ping_rtt_us: Some(150),
            service: "peerd-0279be667ef9dcbb".into(),
            protocol: Protocol::Lightning,
            init: true,
        }]),
        LnpMsg::PingPeer {
            node_id: id,
            num_pong_bytes: 4,
            protocol: Protocol::Lightning,
        },
        LnpMsg::PeerPong { rtt_us: 99 },
        LnpMsg::Listening {
            addr: "127.0.0.1:9735".into(),
        },
        LnpMsg::SubscribePeerMessages {
            types: vec![32_769, 32_768],
        },
        LnpMsg::PeerMessageIn(m.clone()),
        LnpMsg::SendPeerMessage(m),
        LnpMsg::SubscribeBifrostApps { apps: vec![1] },
        LnpMsg::BifrostAppIn(a.clone()),
        LnpMsg::SendBifrostApp(a),
        LnpMsg::ChannelOpen {
            node_id: id,
            sats: 100_000,
            push_msat: 0,
        },
        LnpMsg::ChannelOpened {
            channel_id: [3; 32],
            funding: format!("{}:0", "ab".repeat(32)),
        },
        LnpMsg::ListChannels,
        LnpMsg::ChannelList(vec![ChannelInfo {
            channel_id: [3; 32],
            peer: id,
            capacity_sat: 100_000,
            local_msat: 90_000_000,
            remote_msat: 9_000_000,
            outbound: true,
            state: 1,
            funding: Some(format!("{}:0", "ab".repeat(32))),
            scid: Some(1 << 40),
            confirmations: Some(3),
            confirmations_required: Some(1),
        }]),
        LnpMsg::MakeInvoice {
            amount_msat: Some(10_000),
            description: "coffee".into(),
            expiry_secs: 3_600,
        },
        LnpMsg::Invoice {
            bolt11: "lnbcrt1...".into(),
            hash: [4; 32],
        },
        LnpMsg::Pay {
            bolt11: "lnbcrt1...".into(),
            amount_msat: None,
            wait: true,
        },
        LnpMsg::PaymentInfo(p.clone()),
        LnpMsg::ListPayments,
        LnpMsg::PaymentList(vec![p]),
        LnpMsg::CloseChannel {
            channel_id: [3; 32],
            force: false,
        },
        LnpMsg::LnBalance,
        LnpMsg::LnBalances {
            channels: vec![([3; 32], 90_000_000, 9_000_000)],
            onchain_sat: 0,
            claims: vec![],
        },
        LnpMsg::SubscribeChannelEvents,
        LnpMsg::ChannelEvent(ChannelEventInfo {
            kind: 1,
            id: [3; 32],
            peer: Some(id),
            amount_msat: 0,
            text: String::new(),
        }),
    ];
    for s in &list {
        match s {
            LnpMsg::Listen { .. }
            | LnpMsg::Connect { .. }
            | LnpMsg::Disconnect { .. }
            | LnpMsg::ListPeers
            | LnpMsg::PeerList(_)
            | LnpMsg::PingPeer { .. }
            | LnpMsg::PeerPong { .. }
            | LnpMsg::Listening { .. }
            | LnpMsg::SubscribePeerMessages { .. }
            | LnpMsg::PeerMessageIn(_)
            | LnpMsg::SendPeerMessage(_)
            | LnpMsg::SubscribeBifrostApps { .. }
            | LnpMsg::BifrostAppIn(_)
            | LnpMsg::SendBifrostApp(_)
            | LnpMsg::ChannelOpen { .. }
            | LnpMsg::ChannelOpened { .. }
            | LnpMsg::ListChannels
            | LnpMsg::ChannelList(_)
            | LnpMsg::MakeInvoice { .. }
            | LnpMsg::Invoice { .. }
            | LnpMsg::Pay { .. }
            | LnpMsg::PaymentInfo(_)
            | LnpMsg::ListPayments
            | LnpMsg::PaymentList(_)
            | LnpMsg::CloseChannel { .. }
            | LnpMsg::LnBalance
            | LnpMsg::LnBalances { .. }
            | LnpMsg::SubscribeChannelEvents
            | LnpMsg::ChannelEvent(_) => {}
        }
    }
    list.into_iter().map(Msg::from).collect()
}

/// The BP Node's messages (0x03xx).
pub fn bp() -> Vec<Msg> {
    let b = BlockRef {
        height: 5,
        hash: [1; 32],
        header: [2; 80],
    };
    let list = vec![
        BpMsg::BtcPeers,
        BpMsg::BtcPeerList(vec![BtcPeerInfo {
            addr: "127.0.0.1:18444".into(),
            outbound: true,
            user_agent: "/bcoin:1.0.2/".into(),
            version: 70015,
            start_height: 300,
            ping_rtt_us: None,
        }]),
        BpMsg::BtcConnect {
            addr: "127.0.0.1:1".into(),
        },
        BpMsg::GetHeader(BlockQuery::Height(5)),
        BpMsg::HeaderInfo(b),
        BpMsg::GetBlock(BlockQuery::Hash([1; 32])),
        BpMsg::BlockData {
            height: 5,
            hash: [1; 32],
            raw: vec![0; 81],
        },
        BpMsg::Broadcast { tx: vec![1, 2] },
        BpMsg::Broadcasted {
            txid: [4; 32],
            peers: 3,
        },
        BpMsg::GetTx { txid: [5; 32] },
        BpMsg::TxInfo(TxInfo {
            txid: [5; 32],
            status: TxStatus::Mined {
                height: 7,
                hash: [6; 32],
                time: 1_296_688_602,
                pos: 1,
                confirmations: 3,
            },
            tx: Some(vec![2, 0, 0, 0]),
        }),
        BpMsg::AddWatch {
            owner: "lnpd".into(),
            id: "funding-1".into(),
            target: WatchTarget::Outpoint([7; 32], 1),
            from_height: Some(100),
        },
        BpMsg::WatchInfo(WatchInfo {
            owner: "lnpd".into(),
            id: "pay".into(),
            target: WatchTarget::Script(vec![0x00, 0x14, 1, 2]),
            from_height: 10,
        }),
        BpMsg::RemoveWatch {
            owner: "lnpd".into(),
            id: "pay".into(),
        },
        BpMsg::ListWatches {
            owner: "lnpd".into(),
        },
        BpMsg::WatchList(vec![WatchInfo {
            owner: "lnpd".into(),
            id: "tx".into(),
            target: WatchTarget::Txid([8; 32]),
            from_height: 0,
        }]),
        BpMsg::SubscribeWatches {
            owner: "lnpd".into(),
            since: Some([9; 32]),
            filtered: true,
        },
        BpMsg::FilteredBlock(FilteredBlock {
            block: b,
            txs: vec![(1, vec![2, 0, 0, 0])],
        }),
        BpMsg::TxSeen {
            id: "pay".into(),
            txid: [3; 32],
            tx: vec![2, 0, 0, 0],
        },
        BpMsg::WatchSynced(WatchSynced {
            events: 2,
            height: 12,
            hash: [9; 32],
            more: false,
        }),
        BpMsg::TxConfirmed(WatchHit {
            id: "pay".into(),
            txid: [3; 32],
            height: 12,
            block: [9; 32],
            pos: 1,
            confirmations: 1,
            vout: Some(0),
            spent: None,
            tx: vec![2, 0, 0, 0],
        }),
        BpMsg::OutpointSpent(WatchHit {
            id: "funding-1".into(),
            txid: [3; 32],
            height: 12,
            block: [9; 32],
            pos: 1,
            confirmations: 1,
            vout: None,
            spent: Some(([7; 32], 1, 0)),
            tx: vec![2, 0, 0, 0],
        }),
        BpMsg::TxUnconfirmed {
            id: "pay".into(),
            txid: [3; 32],
            height: 12,
            block: [9; 32],
        },
        BpMsg::WalletBalance,
        BpMsg::WalletBalances(vec![AccountBalance {
            kind: 0,
            confirmed: 150_000,
            trusted_pending: 1,
            untrusted_pending: 2,
            immature: 3,
        }]),
        BpMsg::WalletUtxos,
        BpMsg::WalletUtxoList(vec![WalletUtxo {
            kind: 1,
            txid: [4; 32],
            vout: 1,
            value: 250_000,
            address: "bcrt1p…".into(),
            chain: 0,
            index: 0,
            height: Some(111),
        }]),
        BpMsg::WalletHistory,
        BpMsg::WalletTxList(vec![WalletTx {
            kind: 0,
            txid: [4; 32],
            delta: -10_141,
            fee: Some(141),
            height: None,
            time: None,
        }]),
        BpMsg::WalletSend {
            address: "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl".into(),
            sats: 100_000,
            fee_rate: Some(2),
            dry_run: true,
        },
        BpMsg::WalletSent(WalletSent {
            txid: [4; 32],
            tx: vec![2, 0, 0, 0],
            fee: 282,
            kind: 0,
            peers: Some(1),
        }),
        BpMsg::WalletFund {
            outputs: vec![(vec![0x00, 0x20, 1, 2], 1_000_000)],
            fee_rate: None,
        },
        BpMsg::GetFees,
        BpMsg::FeeRates(vec![FeeRate {
            target: 6,
            sat_per_vb: 4,
            source: "config".into(),
        }]),
        BpMsg::SignerInfo,
        BpMsg::SignerAccounts {
            fingerprint: [0x73, 0xc5, 0xda, 0x0a],
            accounts: vec![AccountInfo {
                kind: 0,
                path: "m/84'/1'/0'".into(),
                xpub: "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M".into(),
                receive: "wpkh([73c5da0a/84h/1h/0h]tpub…/0/*)#checksum".into(),
                change: "wpkh([73c5da0a/84h/1h/0h]tpub…/1/*)#checksum".into(),
            }],
        },
        BpMsg::GetAddress {
            taproot: false,
            index: None,
        },
        BpMsg::AddressInfo(AddressInfo {
            address: "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl".into(),
            kind: 0,
            index: 0,
            path: "m/84'/1'/0'/0/0".into(),
            script: vec![0; 22],
            pubkey: generator(),
        }),
        BpMsg::SignPsbt {
            psbt: b"psbt\xff".to_vec(),
            finalize: true,
        },
        BpMsg::PsbtSigned(PsbtSigned {
            signed: vec![0, 2],
            fee: 1_000,
            finalized: false,
            data: vec![1, 2, 3],
            not_final: vec![1],
        }),
        BpMsg::SubscribeBlocks,
        BpMsg::BlockConnected(b),
        BpMsg::BlockDisconnected(b),
    ];
    for s in &list {
        match s {
            BpMsg::BtcPeers
            | BpMsg::BtcPeerList(_)
            | BpMsg::BtcConnect { .. }
            | BpMsg::GetHeader(_)
            | BpMsg::HeaderInfo(_)
            | BpMsg::GetBlock(_)
            | BpMsg::BlockData { .. }
            | BpMsg::Broadcast { .. }
            | BpMsg::Broadcasted { .. }
            | BpMsg::GetTx { .. }
            | BpMsg::TxInfo(_)
            | BpMsg::AddWatch { .. }
            | BpMsg::WatchInfo(_)
            | BpMsg::RemoveWatch { .. }
            | BpMsg::ListWatches { .. }
            | BpMsg::WatchList(_)
            | BpMsg::SubscribeWatches { .. }
            | BpMsg::WatchSynced(_)
            | BpMsg::TxConfirmed(_)
            | BpMsg::OutpointSpent(_)
            | BpMsg::TxUnconfirmed { .. }
            | BpMsg::FilteredBlock(_)
            | BpMsg::TxSeen { .. }
            | BpMsg::WalletBalance
            | BpMsg::WalletBalances(_)
            | BpMsg::WalletUtxos
            | BpMsg::WalletUtxoList(_)
            | BpMsg::WalletHistory
            | BpMsg::WalletTxList(_)
            | BpMsg::WalletSend { .. }
            | BpMsg::WalletSent(_)
            | BpMsg::WalletFund { .. }
            | BpMsg::GetFees
            | BpMsg::FeeRates(_)
            | BpMsg::SignerInfo
            | BpMsg::SignerAccounts { .. }
            | BpMsg::GetAddress { .. }
            | BpMsg::AddressInfo(_)
            | BpMsg::SignPsbt { .. }
            | BpMsg::PsbtSigned(_)
            | BpMsg::SubscribeBlocks
            | BpMsg::BlockConnected(_)
            | BpMsg::BlockDisconnected(_) => {}
        }
    }
    list.into_iter().map(Msg::from).collect()
}

/// The RGB Node's messages (0x04xx).
pub fn rgb() -> Vec<Msg> {
    let id = || "rgb:sample-contract".to_string();
    let list = vec![
        RgbMsg::Issue(NiaIssue {
            ticker: "TEST".into(),
            name: "Test asset".into(),
            precision: 8,
            supply: 1_000,
            seal: "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1".into(),
        }),
        RgbMsg::Issued(id()),
        RgbMsg::Import(b"RGB\0CON".to_vec()),
        RgbMsg::Imported(Validation {
            contract_id: id(),
            warnings: vec![],
        }),
        RgbMsg::Contracts,
        RgbMsg::ContractList(vec![id()]),
        RgbMsg::State(id()),
        RgbMsg::ContractState(ContractState {
            contract_id: id(),
            ticker: "TEST".into(),
            name: "Test asset".into(),
            precision: 8,
            issued: 1_000,
            allocations: vec![("seal".into(), 1_000)],
        }),
        RgbMsg::Export {
            contract_id: id(),
            armored: true,
        },
        RgbMsg::Exported(vec![1; 10]),
        RgbMsg::SendContract {
            node_id: NodeId([2; 33]),
            contract_id: id(),
        },
        RgbMsg::ContractSubscribe,
        RgbMsg::ContractReceived(Received {
            from: NodeId([2; 33]),
            container_id: ContainerId([9; 32]),
            valid: false,
            contract_id: String::new(),
            reasons: vec!["invalid".into()],
        }),
    ];
    for m in &list {
        match m {
            RgbMsg::Issue(_)
            | RgbMsg::Issued(_)
            | RgbMsg::Import(_)
            | RgbMsg::Imported(_)
            | RgbMsg::Contracts
            | RgbMsg::ContractList(_)
            | RgbMsg::State(_)
            | RgbMsg::ContractState(_)
            | RgbMsg::Export { .. }
            | RgbMsg::Exported(_)
            | RgbMsg::SendContract { .. }
            | RgbMsg::ContractSubscribe
            | RgbMsg::ContractReceived(_) => {}
        }
    }
    list.into_iter().map(Msg::from).collect()
}

/// The Storm Node's messages (0x05xx).
pub fn storm() -> Vec<Msg> {
    let header = ContainerHeader {
        version: 0,
        mime: "text/plain".into(),
        info: "greeting".into(),
        size: 5,
    };
    let info = ContainerInfo {
        id: ContainerId([9; 32]),
        header: header.clone(),
        chunks: 1,
    };
    let t = || "chunks".to_string();
    let chat = ChatEntry {
        peer: NodeId([2; 33]),
        outgoing: false,
        time_ms: 1_700_000_000_000,
        text: "hi".into(),
    };
    let transfer = TransferInfo {
        container_id: ContainerId([9; 32]),
        peer: NodeId([2; 33]),
        app: 0x0002,
        state: TransferState::Chunks,
        size: 5,
        chunks: 1,
        have: 0,
        had: 0,
        fetched: 0,
        served: 0,
        note: String::new(),
    };
    let list = vec![
        StormMsg::Tables,
        StormMsg::TableList(vec![TableInfo {
            name: t(),
            count: 3,
        }]),
        StormMsg::Count { table: t() },
        StormMsg::Counted(7),
        StormMsg::Put {
            table: "contract-test".into(),
            key: [1; 32],
            value: b"value".to_vec(),
        },
        StormMsg::Get {
            table: t(),
            key: [1; 32],
        },
        StormMsg::Value(vec![5; 100]),
        StormMsg::Delete {
            table: "contract-test".into(),
            key: [1; 32],
        },
        StormMsg::StoreChunk {
            table: t(),
            data: b"hello".to_vec(),
        },
        StormMsg::ChunkStored(ChunkId([2; 32])),
        StormMsg::RetrieveChunk {
            table: t(),
            id: ChunkId([2; 32]),
        },
        StormMsg::Insert {
            table: "contract-test".into(),
            ids: vec![[3; 32]; 3],
        },
        StormMsg::ListIds {
            table: t(),
            after: Some([4; 32]),
            limit: 100,
        },
        StormMsg::IdList {
            ids: vec![[5; 32]; 2],
            more: true,
        },
        StormMsg::CheckUnknown {
            table: t(),
            ids: vec![[6; 32]],
        },
        StormMsg::Containerize {
            header: header.clone(),
            chunks: vec![ChunkId([6; 32])],
        },
        StormMsg::ContainerCreated(info.clone()),
        StormMsg::Containers,
        StormMsg::ContainerList(vec![info]),
        StormMsg::GetContainer(ContainerId([7; 32])),
        StormMsg::ContainerData {
            id: ContainerId([7; 32]),
            container: Container {
                header,
                chunks: vec![ChunkId([8; 32])],
            },
        },
        StormMsg::Assemble(ContainerId([7; 32])),
        StormMsg::RegisterApp {
            app: 0x8001,
            name: "echo".into(),
        },
        StormMsg::AppSend {
            app: 0x8002,
            payload: vec![1; 10],
        },
        StormMsg::AppMessage {
            app: 1,
            from: "client:0102030405060708".into(),
            payload: vec![],
        },
        StormMsg::Apps,
        StormMsg::AppList(vec![AppInfo {
            app: 1,
            name: "chat".into(),
        }]),
        StormMsg::ChatSend {
            node_id: NodeId([2; 33]),
            text: "hi".into(),
        },
        StormMsg::ChatSubscribe,
        StormMsg::ChatIn(chat.clone()),
        StormMsg::ChatHistory {
            node_id: NodeId([2; 33]),
        },
        StormMsg::ChatList(vec![chat]),
        StormMsg::AppSendTo {
            node_id: NodeId([2; 33]),
            app: 0x8001,
            payload: b"ping".to_vec(),
        },
        StormMsg::SendContainer {
            node_id: NodeId([2; 33]),
            container_id: ContainerId([9; 32]),
            app: 0x0002,
        },
        StormMsg::AcceptContainer(ContainerId([9; 32])),
        StormMsg::Transfers,
        StormMsg::TransferList(vec![transfer.clone()]),
        StormMsg::TransferSubscribe(Some(ContainerId([9; 32]))),
        StormMsg::TransferProgress(transfer.clone()),
        StormMsg::ContainerReceived(transfer),
    ];
    for s in &list {
        match s {
            StormMsg::Tables
            | StormMsg::TableList(_)
            | StormMsg::Count { .. }
            | StormMsg::Counted(_)
            | StormMsg::Put { .. }
            | StormMsg::Get { .. }
            | StormMsg::Value(_)
            | StormMsg::Delete { .. }
            | StormMsg::StoreChunk { .. }
            | StormMsg::ChunkStored(_)
            | StormMsg::RetrieveChunk { .. }
            | StormMsg::Insert { .. }
            | StormMsg::ListIds { .. }
            | StormMsg::IdList { .. }
            | StormMsg::CheckUnknown { .. }
            | StormMsg::Containerize { .. }
            | StormMsg::ContainerCreated(_)
            | StormMsg::Containers
            | StormMsg::ContainerList(_)
            | StormMsg::GetContainer(_)
            | StormMsg::ContainerData { .. }
            | StormMsg::Assemble(_)
            | StormMsg::RegisterApp { .. }
            | StormMsg::AppSend { .. }
            | StormMsg::AppMessage { .. }
            | StormMsg::Apps
            | StormMsg::AppList(_)
            | StormMsg::ChatSend { .. }
            | StormMsg::ChatSubscribe
            | StormMsg::ChatIn(_)
            | StormMsg::ChatHistory { .. }
            | StormMsg::ChatList(_)
            | StormMsg::AppSendTo { .. }
            | StormMsg::SendContainer { .. }
            | StormMsg::AcceptContainer(_)
            | StormMsg::Transfers
            | StormMsg::TransferList(_)
            | StormMsg::TransferSubscribe(_)
            | StormMsg::TransferProgress(_)
            | StormMsg::ContainerReceived(_) => {}
        }
    }
    list.into_iter().map(Msg::from).collect()
}

/// Every type id of the API: the generic ones, then each node's set.
pub fn all_type_ids() -> Vec<u16> {
    [
        type_id::GENERIC,
        LnpMsg::TYPE_IDS,
        BpMsg::TYPE_IDS,
        RgbMsg::TYPE_IDS,
        StormMsg::TYPE_IDS,
    ]
    .concat()
}

/// One sample of every type id of the API.
pub fn all() -> Vec<Msg> {
    [generic(), lnp(), bp(), rgb(), storm()].concat()
}

/// Whether `samples` has exactly one message of every type id in `ids`, and nothing else:
/// `Err` names what is missing or extra.
pub fn covers(samples: &[Msg], ids: &[u16]) -> Result<(), String> {
    let seen: Vec<u16> = samples.iter().map(Msg::type_id).collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !seen.contains(id))
        .map(|id| format!("{id:#06x}"))
        .collect();
    let extra: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(i, id)| !ids.contains(id) || seen[..*i].contains(id))
        .map(|(_, id)| format!("{id:#06x}"))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "samples missing {missing:?}, extra or repeated {extra:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::testing::roundtrip;

    #[test]
    fn one_sample_of_every_type_id_and_each_round_trips() {
        covers(&generic(), type_id::GENERIC).unwrap();
        covers(&lnp(), LnpMsg::TYPE_IDS).unwrap();
        covers(&bp(), BpMsg::TYPE_IDS).unwrap();
        covers(&rgb(), RgbMsg::TYPE_IDS).unwrap();
        covers(&storm(), StormMsg::TYPE_IDS).unwrap();
        let all = all();
        covers(&all, &all_type_ids()).unwrap();
        all.into_iter().for_each(roundtrip);
        assert!(covers(&lnp(), BpMsg::TYPE_IDS).is_err());
    }
}
