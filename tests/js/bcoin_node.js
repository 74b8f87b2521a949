// A real full node for the BP tests: bcoin (npm, 1.0.x) on regtest, in memory, P2P on 127.0.0.1.
// Usage: node bcoin_node.js PORT [BLOCKS]
// Prints {"port","height","hash"} once ready, then answers one JSON line per command on stdin:
//   mine N                -> {"height","hash"}            mines N blocks on the tip
//   tip                   -> {"height","hash"}
//   reorg DEPTH           -> {"height","hash","fork"}     rewinds DEPTH blocks, mines DEPTH+1 on the fork
//   hash HEIGHT           -> {"hash"}
//   block HASH            -> {"hex"}                      the raw block (witness serialization)
//   peers                 -> {"peers": N}
//   connect HOST:PORT     -> {"ok": true}                 adds an outbound peer (a second node)
//   mineto N SCRIPT       -> {"height","hash"}            mines N blocks paying their coinbase to
//                                                         the output script SCRIPT (hex)
//   mempool TXID          -> {"in": bool}                 whether bcoin's mempool holds TXID
//   verdict HEX           -> {"ok": true} | {"reason"}    bcoin's mempool verdict on a raw tx
//   sendmined SCRIPT SATS -> {"txid","change","raw","height","hash"}  pays SATS to SCRIPT in a
//                                                         new block (the transaction put in the
//                                                         template by hand: bcoin's mempool refuses
//                                                         payments to P2TR), with the mempool's
//   minewith HEX          -> {"height","hash"}            a new block with the mempool and HEX
//   ringscript            -> {"script"}                   the output script of bcoin's key
//   received TXID         -> {"value","height"}           what TXID (mined or in the mempool)
//                                                         pays bcoin's key, and its height
//   spend TXID:VOUT       -> {"txid","change"}            spends that coin of bcoin's key (the
//                                                         change of a `send`) to nobody
//   send SCRIPT SATS      -> {"txid","change"}            pays SATS to the output script SCRIPT
//                                                         (hex) from the coinbases of bcoin's
//                                                         own key (mined blocks pay to it), into
//                                                         bcoin's mempool; the next block has it
//   fill N K              -> {"height","hash","sent"}     mines N blocks, each with K payments
//                                                         of bcoin's key (once coinbases mature)
//   txmeta TXID           -> {"height","block","index"}   where bcoin's tx index has TXID
// Hashes are in the usual display order (as block explorers show them).
'use strict';
process.env.NODE_BACKEND = 'js';
const bcoin = require('bcoin');
const readline = require('readline');

async function main() {
  const port = Number(process.argv[2]);
  const blocks = Number(process.argv[3] || 0);
  const node = new bcoin.FullNode({
    network: 'regtest', memory: true, listen: true, host: '127.0.0.1', port,
    httpHost: '127.0.0.1', httpPort: port + 1, workers: false, discover: false,
    seeds: [], nodes: [], maxOutbound: 1, logLevel: 'none', checkpoints: false,
    indexTX: true,
  });
  // bcoin's own key: every block it mines pays it, so `send` can spend mature coinbases.
  const ring = bcoin.KeyRing.generate();
  const ringAddr = ring.getAddress();
  // The coins of bcoin's key: coinbases oldest first, then the change of its payments.
  let coins = [];
  const ringScript = bcoin.Script.fromAddress(ringAddr);
  // Why bcoin refuses a transaction or a block goes to stderr (the test's output).
  node.on('error', (e) => console.error(`bcoin: ${e && e.message}`));
  await node.open();
  await node.connect();
  node.startSync();
  const tip = () => ({ height: node.chain.height, hash: node.chain.tip.rhash() });
  const mine = async (n, address) => {
    for (let i = 0; i < n; i++) {
      const block = await node.miner.mineBlock(node.chain.tip, address || ringAddr);
      await node.chain.add(block);
      if (!address) coins.push(bcoin.Coin.fromTX(block.txs[0], 0, node.chain.height));
    }
  };
  await mine(blocks);
  const build = async (script, sats, which) => {
    const mtx = new bcoin.MTX();
    mtx.addOutput(script, sats);
    const mature = which !== undefined ? which
      : coins.findIndex((c) => !c.coinbase || c.height + 100 <= node.chain.height);
    if (mature < 0) throw new Error('no mature coin of bcoin\'s key yet');
    const [coin] = coins.splice(mature, 1);
    await mtx.fund([coin], { rate: 1000, changeAddress: ringAddr, height: node.chain.height });
    mtx.sign(ring);
    const tx = mtx.toTX();
    // The change, spendable at once (not a coinbase).
    const change = tx.outputs.findIndex((o) => o.script.equals(ringScript));
    if (change >= 0) coins.push(bcoin.Coin.fromTX(tx, change, -1));
    return { tx, txid: tx.txid(), change };
  };
  const pay = async (script, sats, which) => {
    const r = await build(script, sats, which);
    await node.mempool.addTX(r.tx);
    return { txid: r.txid, change: r.change };
  };
  // Mines a block with the mempool's transactions and `tx`, put in the template by hand (for
  // what bcoin's mempool refuses: payments to P2TR outputs).
  const mineWith = async (tx) => {
    const job = await node.miner.cpu.createJob(node.chain.tip, ringAddr);
    job.attempt.pushTX(tx, await node.chain.getCoinView(tx));
    job.refresh();
    const block = await node.miner.cpu.mineAsync(job);
    await node.chain.add(block);
    coins.push(bcoin.Coin.fromTX(block.txs[0], 0, node.chain.height));
  };
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  // bcoin 1.0 keeps hashes as hex strings in internal byte order: reverse for display.
  const rev = (hex) => hex.match(/../g).reverse().join('');
  out(Object.assign({ port }, tip()));
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, arg, arg2] = line.trim().split(/\s+/);
    try {
      if (cmd === 'mine') { await mine(Number(arg)); out(tip()); }
      else if (cmd === 'mineto') {
        const script = bcoin.Script.fromRaw(Buffer.from(arg2, 'hex'));
        await mine(Number(arg), bcoin.Address.fromScript(script));
        out(tip());
      } else if (cmd === 'mempool') out({ in: node.mempool.hasEntry(rev(arg)) });
      else if (cmd === 'verdict') {
        try {
          await node.mempool.addTX(bcoin.TX.fromRaw(Buffer.from(arg, 'hex')));
          out({ ok: true });
        } catch (e) { out({ reason: String(e && e.message || e) }); }
      }
      else if (cmd === 'send') {
        out(await pay(bcoin.Script.fromRaw(Buffer.from(arg, 'hex')), Number(arg2)));
      } else if (cmd === 'sendmined') {
        const r = await build(bcoin.Script.fromRaw(Buffer.from(arg, 'hex')), Number(arg2));
        await mineWith(r.tx);
        out(Object.assign({ txid: r.txid, change: r.change, raw: r.tx.toRaw().toString('hex') },
          tip()));
      } else if (cmd === 'minewith') {
        await mineWith(bcoin.TX.fromRaw(Buffer.from(arg, 'hex')));
        out(tip());
      } else if (cmd === 'ringscript') out({ script: ringScript.toRaw().toString('hex') });
      else if (cmd === 'received') {
        const meta = await node.getMeta(rev(arg));
        if (!meta) out({ value: null });
        else {
          const value = meta.tx.outputs.filter((o) => o.script.equals(ringScript))
            .reduce((s, o) => s + o.value, 0);
          out({ value, height: meta.height });
        }
      } else if (cmd === 'spend') {
        const [txid, vout] = arg.split(':');
        const which = coins.findIndex((c) => c.txid() === txid && c.index === Number(vout));
        if (which < 0) throw new Error(`bcoin's key has no coin ${arg}`);
        const nobody = bcoin.Script.fromRaw(Buffer.from('0014' + '55'.repeat(20), 'hex'));
        out(await pay(nobody, 10000, which));
      } else if (cmd === 'fill') {
        const nobody = bcoin.Script.fromRaw(Buffer.from('0014' + '33'.repeat(20), 'hex'));
        let sent = 0;
        for (let i = 0; i < Number(arg); i++) {
          if (node.chain.height > 100) {
            for (let k = 0; k < Number(arg2); k++) { await pay(nobody, 10000); sent++; }
          }
          await mine(1);
        }
        out(Object.assign({ sent }, tip()));
      } else if (cmd === 'txmeta') {
        const meta = await node.getMeta(rev(arg));
        const hex = (h) => (typeof h === 'string' ? h : h.toString('hex'));
        out(meta ? { height: meta.height, block: meta.block ? rev(hex(meta.block)) : null,
          index: meta.index } : { height: null });
      }
      else if (cmd === 'tip') out(tip());
      else if (cmd === 'reorg') {
        const depth = Number(arg);
        const fork = node.chain.height - depth;
        await node.chain.reset(fork);
        coins = coins.filter((c) => c.height <= fork);
        await mine(depth + 1);
        out(Object.assign({ fork }, tip()));
      } else if (cmd === 'hash') {
        const h = await node.chain.getHash(Number(arg));
        out({ hash: h ? rev(typeof h === 'string' ? h : h.toString('hex')) : null });
      } else if (cmd === 'block') {
        const b = await node.chain.getBlock(rev(arg));
        out({ hex: b ? b.toRaw().toString('hex') : null });
      } else if (cmd === 'peers') out({ peers: node.pool.peers.size() });
      else if (cmd === 'connect') {
        const [host, p] = arg.split(':');
        const addr = new bcoin.net.NetAddress({ host, port: Number(p) });
        node.pool.peers.add(node.pool.createOutbound(addr));
        out({ ok: true });
      } else out({ error: `unknown command ${cmd}` });
    } catch (e) { out({ error: String(e && e.stack || e) }); }
  }
  await node.close();
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
