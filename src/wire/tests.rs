use proptest::prelude::*;

use super::replica::{Applied, DropCause, Replica, ReplicaState, MAX_REPLICA_LEVELS};
use super::*;

fn top() -> TopRec {
    TopRec {
        update_id: 50_093_239_224,
        exch_time_us: 1_723_075_200_123_456,
        recv_ns: 1_723_075_201_400_000_001,
        tick: 1_000_000,
        bid: Some((6_183_700, 12_345_000)),
        ask: Some((6_183_701, 1)),
    }
}

fn head(first_id: u64, last_id: u64, prev_id: u64) -> DiffHead {
    DiffHead { first_id, last_id, prev_id, exch_time_us: 7, recv_ns: 8, tick: 1_000_000 }
}

fn snap_head(update_id: u64, depth: u32) -> SnapshotHead {
    SnapshotHead { update_id, recv_ns: 9, tick: 1_000_000, depth }
}

fn one(buf: &[u8]) -> (Header, Record<'_>) {
    let (h, r) = decode(buf).expect("decodes");
    assert_eq!(h.len as usize, buf.len(), "one record fills the buffer");
    (h, r)
}

/// The top record's bytes, written out by hand from `docs/wire.md`'s tables.
#[test]
fn a_top_record_has_the_documented_layout() {
    let mut out = Vec::new();
    Encoder::new().top(&mut out, 3, &top());
    let mut want = Vec::new();
    want.extend_from_slice(b"TF");
    want.push(1); // version
    want.push(1); // kind: top
    want.extend_from_slice(&88u32.to_le_bytes()); // 24 + 64
    want.extend_from_slice(&3u32.to_le_bytes()); // symbol id
    want.extend_from_slice(&[0; 4]); // reserved
    want.extend_from_slice(&1u64.to_le_bytes()); // seq
    want.extend_from_slice(&50_093_239_224u64.to_le_bytes());
    want.extend_from_slice(&1_723_075_200_123_456i64.to_le_bytes());
    want.extend_from_slice(&1_723_075_201_400_000_001i64.to_le_bytes());
    want.extend_from_slice(&1_000_000i64.to_le_bytes());
    want.extend_from_slice(&6_183_700i64.to_le_bytes());
    want.extend_from_slice(&12_345_000i64.to_le_bytes());
    want.extend_from_slice(&6_183_701i64.to_le_bytes());
    want.extend_from_slice(&1i64.to_le_bytes());
    assert_eq!(out, want);
    assert_eq!(one(&out).1, Record::Top(top()));
}

/// The diff record's fixed part and levels, by hand.
#[test]
fn a_diff_record_has_the_documented_layout() {
    let mut out = Vec::new();
    let bids = [(100i64, 5i64), (99, 0)];
    let asks = [(101i64, 7i64)];
    Encoder::new().diff(&mut out, 0, head(11, 12, 10), bids.into_iter(), asks.into_iter()).unwrap();
    assert_eq!(out.len(), 24 + 56 + 3 * 16);
    assert_eq!(&out[0..4], b"TF\x01\x02");
    assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize, out.len());
    let body = &out[24..];
    let u = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap());
    assert_eq!((u(0), u(8), u(16), u(24), u(32), u(40)), (11, 12, 10, 7, 8, 1_000_000));
    assert_eq!(&body[48..56], &[2, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!((u(56), u(64), u(72), u(80), u(88), u(96)), (100, 5, 99, 0, 101, 7));
    let Record::Diff(d) = one(&out).1 else { panic!("a diff") };
    assert_eq!(d.bids.iter().collect::<Vec<_>>(), bids);
    assert_eq!(d.asks.iter().collect::<Vec<_>>(), asks);
    assert_eq!((d.first_id, d.last_id, d.prev_id), (11, 12, 10));
}

#[test]
fn every_kind_round_trips_and_records_follow_each_other() {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    let t = TradeRec {
        trade_id: 3_735_683_259,
        exch_time_us: -1,
        recv_ns: i64::MAX,
        tick: 1,
        price: i64::MIN,
        qty: 0,
        buyer_maker: true,
        aggregate: true,
    };
    let st = StatusRec { status: SyncStatus::Gap, cause: 4, update_id: u64::MAX, recv_ns: 1 };
    let sym = SymbolRec { tick: 1_000_000, step: 1_000, venue: 1, price_decimals: 2, name: "BTCUSDT" };
    enc.symbol(&mut out, 7, &sym).unwrap();
    enc.trade(&mut out, 7, &t);
    enc.status(&mut out, 7, &st);
    enc.snapshot(&mut out, 7, snap_head(5, 20), [(3, 4)].into_iter(), std::iter::empty()).unwrap();
    enc.top(&mut out, 7, &TopRec { bid: None, ask: None, ..top() });
    enc.trade(&mut out, 7, &t);
    let mut at = 0;
    let mut got = Vec::new();
    while at < out.len() {
        let (h, r) = decode(&out[at..]).unwrap();
        assert_eq!(h.symbol, 7);
        assert_eq!(at % 8, 0, "records stay 8-aligned back to back");
        at += h.len as usize;
        got.push((h.kind, h.seq, r));
    }
    assert_eq!(at, out.len());
    assert_eq!(got[0], (Kind::Symbol, 1, Record::Symbol(sym)));
    assert_eq!(got[1], (Kind::Trade, 1, Record::Trade(t)));
    assert_eq!(got[2], (Kind::Status, 1, Record::Status(st)));
    let Record::Snapshot(s) = got[3].2 else { panic!() };
    assert_eq!((s.update_id, s.depth, s.bids.len(), s.asks.len()), (5, 20, 1, 0));
    assert_eq!(got[4].2, Record::Top(TopRec { bid: None, ask: None, ..top() }));
    // Numbered per kind: the second trade is trade 2.
    assert_eq!((got[5].0, got[5].1), (Kind::Trade, 2));
    assert_eq!(enc.last_seq(7, Kind::Trade), 2);
    assert_eq!(enc.last_seq(7, Kind::Diff), 0);
    assert_eq!(enc.last_seq(8, Kind::Trade), 0);
}

#[test]
fn the_symbol_name_is_padded_and_bounded() {
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    for n in [0usize, 1, 7, 8, 9, 255] {
        out.clear();
        let name = "X".repeat(n);
        enc.symbol(&mut out, 0, &SymbolRec { tick: 0, step: 0, venue: 0, price_decimals: 8, name: &name }).unwrap();
        assert_eq!(out.len() % 8, 0);
        let Record::Symbol(s) = one(&out).1 else { panic!() };
        assert_eq!(s.name, name);
    }
    let long = "X".repeat(256);
    out.clear();
    let r = enc.symbol(&mut out, 0, &SymbolRec { tick: 0, step: 0, venue: 0, price_decimals: 8, name: &long });
    assert_eq!(r, Err(EncodeError::NameTooLong));
    assert!(out.is_empty());
}

#[test]
fn bad_headers_are_named() {
    let mut out = Vec::new();
    Encoder::new().top(&mut out, 0, &top());
    assert_eq!(decode(&out[..10]), Err(WireError::Short { need: 24, have: 10 }));
    assert_eq!(decode(&out[..30]), Err(WireError::Short { need: 88, have: 30 }));
    let mut b = out.clone();
    b[0] = b'X';
    assert_eq!(decode(&b), Err(WireError::Magic));
    let mut b = out.clone();
    b[2] = 2;
    assert_eq!(decode(&b), Err(WireError::Version(2)));
    let mut b = out.clone();
    b[3] = 99;
    assert_eq!(decode(&b), Err(WireError::UnknownKind { kind: 99, len: 88 }));
    // A length that is not the kind's.
    let mut b = out.clone();
    b[4..8].copy_from_slice(&96u32.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    assert_eq!(decode(&b), Err(WireError::Length(96)));
    let mut b = out.clone();
    b[4..8].copy_from_slice(&(MAX_RECORD_LEN as u32 + 1).to_le_bytes());
    assert_eq!(decode_header(&b), Err(WireError::Length(MAX_RECORD_LEN as u32 + 1)));
    // Levels that do not add up to the length.
    let mut d = Vec::new();
    Encoder::new().diff(&mut d, 0, head(1, 1, 0), [(1, 1)].into_iter(), std::iter::empty()).unwrap();
    d[24 + 48..24 + 52].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&d), Err(WireError::Length(d.len() as u32)));
    // A status byte out of range; a trade flag out of range.
    let mut s = Vec::new();
    Encoder::new().status(&mut s, 0, &StatusRec { status: SyncStatus::Synced, cause: 0, update_id: 1, recv_ns: 1 });
    s[24 + 16] = 9;
    assert_eq!(decode(&s), Err(WireError::Field("status")));
    for e in [
        WireError::Short { need: 1, have: 0 },
        WireError::Magic,
        WireError::Version(3),
        WireError::UnknownKind { kind: 0, len: 0 },
        WireError::Length(0),
        WireError::Field("x"),
    ] {
        let line = e.to_string();
        assert!(!line.is_empty() && !line.contains('\n'));
    }
}

#[test]
fn every_prefix_of_a_record_is_short_not_a_record() {
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    enc.diff(&mut out, 1, head(2, 3, 1), [(1, 2), (3, 4)].into_iter(), [(5, 6)].into_iter()).unwrap();
    for n in 0..out.len() {
        assert!(matches!(decode(&out[..n]), Err(WireError::Short { .. })), "prefix {n}");
    }
}

#[test]
fn too_many_levels_is_refused_before_writing() {
    let mut out = Vec::new();
    let many = (0..MAX_LEVELS + 1).map(|i| (i as i64, 1));
    let r = Encoder::new().diff(&mut out, 0, head(1, 1, 0), many, std::iter::empty());
    assert_eq!(r, Err(EncodeError::TooLarge));
    assert!(out.is_empty());
}

#[test]
fn the_encoder_does_not_reallocate_a_grown_buffer() {
    let mut out = Vec::with_capacity(4096);
    let mut enc = Encoder::new();
    enc.top(&mut out, 0, &top());
    let cap = out.capacity();
    for _ in 0..1000 {
        out.clear();
        enc.top(&mut out, 0, &top());
        enc.diff(&mut out, 0, head(1, 2, 0), [(1, 1); 20].into_iter(), [(2, 2); 20].into_iter()).unwrap();
    }
    assert_eq!(out.capacity(), cap);
}

#[test]
fn the_sequence_check_counts_loss_and_repeats() {
    let mut c = SeqCheck::default();
    assert_eq!(c.on(5), SeqOutcome::Next, "the first seen starts the count");
    assert_eq!(c.on(6), SeqOutcome::Next);
    assert_eq!(c.on(9), SeqOutcome::Lost { lost: 2 });
    assert_eq!(c.on(9), SeqOutcome::Behind);
    assert_eq!(c.on(1), SeqOutcome::Behind, "a publisher that restarted");
    assert_eq!(c.on(2), SeqOutcome::Next);
}

fn feed(rep: &mut Replica, buf: &[u8]) -> Vec<Applied> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let (h, r) = decode(&buf[at..]).unwrap();
        out.push(rep.on_record(&h, &r));
        at += h.len as usize;
    }
    out
}

#[test]
fn a_replica_installs_a_snapshot_then_follows_diffs() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    // A diff before any snapshot is not applied.
    enc.diff(&mut buf, 0, head(9, 9, 8), [(100, 1)].into_iter(), std::iter::empty()).unwrap();
    enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 5), (99, 1)].into_iter(), [(101, 2)].into_iter()).unwrap();
    // Already in the snapshot.
    enc.diff(&mut buf, 0, head(10, 10, 9), [(100, 7)].into_iter(), std::iter::empty()).unwrap();
    enc.diff(&mut buf, 0, head(11, 12, 10), [(100, 0)].into_iter(), [(102, 3)].into_iter()).unwrap();
    let got = feed(&mut rep, &buf);
    assert_eq!(got, [Applied::Nothing, Applied::Book, Applied::Nothing, Applied::Book]);
    assert_eq!(rep.state(), ReplicaState::Synced { partial: false });
    assert_eq!(rep.update_id(), 12);
    assert_eq!(rep.bids().collect::<Vec<_>>(), [(99, 1)]);
    assert_eq!(rep.asks().collect::<Vec<_>>(), [(101, 2), (102, 3)]);
    assert_eq!(rep.best(), Some((Some((99, 1)), Some((101, 2)))));
    assert_eq!(rep.counters().lost, 0);
}

#[test]
fn a_replica_drops_its_book_when_a_diff_does_not_continue_it() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 5)].into_iter(), [(101, 2)].into_iter()).unwrap();
    enc.diff(&mut buf, 0, head(11, 11, 10), [(100, 6)].into_iter(), std::iter::empty()).unwrap();
    feed(&mut rep, &buf);
    buf.clear();
    // Diff 12 is lost on the way: its number is skipped, and 13 continues 12, not 11.
    let mut lost = Vec::new();
    enc.diff(&mut lost, 0, head(12, 12, 11), [(100, 7)].into_iter(), std::iter::empty()).unwrap();
    enc.diff(&mut buf, 0, head(13, 13, 12), [(100, 8)].into_iter(), std::iter::empty()).unwrap();
    assert_eq!(feed(&mut rep, &buf), [Applied::Dropped(DropCause::Discontinuous)]);
    assert_eq!(rep.state(), ReplicaState::Waiting);
    assert_eq!(rep.best(), None);
    assert_eq!(rep.counters().lost, 1);
    // The next snapshot brings it back.
    buf.clear();
    enc.snapshot(&mut buf, 0, snap_head(13, 0), [(100, 8)].into_iter(), [(101, 2)].into_iter()).unwrap();
    enc.diff(&mut buf, 0, head(14, 14, 13), std::iter::empty(), [(101, 0)].into_iter()).unwrap();
    assert_eq!(feed(&mut rep, &buf), [Applied::Book, Applied::Book]);
    assert_eq!(rep.best(), Some((Some((100, 8)), None)));
}

#[test]
fn a_replica_drops_its_book_on_the_publishers_resync_even_if_no_record_is_lost() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 5)].into_iter(), [(101, 2)].into_iter()).unwrap();
    enc.status(&mut buf, 0, &StatusRec { status: SyncStatus::Gap, cause: 1, update_id: 10, recv_ns: 0 });
    assert_eq!(feed(&mut rep, &buf)[1], Applied::Dropped(DropCause::PublisherResync));
    // Without the status: the publisher resynced to 20 and its next diff continues 20; the
    // replica, still at 10, must not apply it.
    let mut rep = Replica::new();
    buf.clear();
    enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 5)].into_iter(), [(101, 2)].into_iter()).unwrap();
    enc.diff(&mut buf, 0, head(19, 21, 20), [(100, 1)].into_iter(), std::iter::empty()).unwrap();
    assert_eq!(feed(&mut rep, &buf)[1], Applied::Dropped(DropCause::Discontinuous));
}

#[test]
fn a_replica_ignores_an_older_snapshot_and_marks_a_partial_one() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    enc.snapshot(&mut buf, 0, snap_head(10, 5), [(100, 5)].into_iter(), [(101, 2)].into_iter()).unwrap();
    enc.snapshot(&mut buf, 0, snap_head(9, 0), [(90, 5)].into_iter(), [(91, 2)].into_iter()).unwrap();
    assert_eq!(feed(&mut rep, &buf), [Applied::Book, Applied::Nothing]);
    assert_eq!(rep.state(), ReplicaState::Synced { partial: true });
    assert_eq!(rep.update_id(), 10);
}

#[test]
fn the_same_snapshot_again_changes_nothing_and_a_different_one_corrects_the_book() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    for _ in 0..2 {
        enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 5)].into_iter(), [(101, 2)].into_iter()).unwrap();
    }
    enc.snapshot(&mut buf, 0, snap_head(10, 0), [(100, 6)].into_iter(), [(101, 2)].into_iter()).unwrap();
    assert_eq!(feed(&mut rep, &buf), [Applied::Book, Applied::Nothing, Applied::Book]);
    assert_eq!(rep.bids().collect::<Vec<_>>(), [(100, 6)]);
    assert_eq!(rep.counters().corrections, 1);
}

#[test]
fn a_replica_bounds_its_levels() {
    let (mut enc, mut buf, mut rep) = (Encoder::new(), Vec::new(), Replica::new());
    let many = (0..MAX_REPLICA_LEVELS).map(|i| (i as i64, 1));
    enc.snapshot(&mut buf, 0, snap_head(10, 0), many, std::iter::empty()).unwrap();
    enc.diff(&mut buf, 0, head(11, 11, 10), [(-1, 1)].into_iter(), std::iter::empty()).unwrap();
    assert_eq!(feed(&mut rep, &buf), [Applied::Book, Applied::Dropped(DropCause::TooManyLevels)]);
}

fn any_record() -> impl Strategy<Value = Vec<u8>> {
    let levels = || proptest::collection::vec((any::<i64>(), any::<i64>()), 0..8);
    (0u8..6, 0u32..4096, any::<u64>(), any::<i64>(), levels(), levels(), "[A-Z]{0,12}").prop_map(
        |(k, sym, id, t, b, a, name)| {
            let mut enc = Encoder::new();
            let mut out = Vec::new();
            match k {
                0 => enc.top(&mut out, sym, &TopRec { update_id: id, tick: t, ..top() }),
                1 => enc.diff(&mut out, sym, head(id, id, t as u64), b.into_iter(), a.into_iter()).unwrap(),
                2 => enc.trade(
                    &mut out,
                    sym,
                    &TradeRec {
                        trade_id: id,
                        exch_time_us: t,
                        recv_ns: t,
                        tick: t,
                        price: t,
                        qty: t,
                        buyer_maker: id % 2 == 0,
                        aggregate: false,
                    },
                ),
                3 => enc.snapshot(&mut out, sym, snap_head(id, t as u32), b.into_iter(), a.into_iter()).unwrap(),
                4 => enc.status(
                    &mut out,
                    sym,
                    &StatusRec { status: SyncStatus::Resyncing, cause: t as u8, update_id: id, recv_ns: t },
                ),
                _ => enc
                    .symbol(&mut out, sym, &SymbolRec { tick: t, step: t, venue: 0, price_decimals: 2, name: &name })
                    .unwrap(),
            }
            out
        },
    )
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let mut rep = Replica::new();
        if let Ok((h, r)) = decode(&bytes) {
            rep.on_record(&h, &r);
        }
    }

    #[test]
    fn any_one_byte_change_decodes_or_fails_without_panicking(
        rec in any_record(), at in any::<prop::sample::Index>(), v in any::<u8>()
    ) {
        let mut b = rec.clone();
        let i = at.index(b.len());
        b[i] = v;
        if let Ok((h, r)) = decode(&b) {
            prop_assert!(h.len as usize <= b.len());
            Replica::new().on_record(&h, &r);
        }
    }

    #[test]
    fn a_record_reencodes_to_the_same_bytes(rec in any_record()) {
        let (h, r) = decode(&rec).unwrap();
        prop_assert_eq!(h.len as usize, rec.len());
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        match r {
            Record::Top(t) => enc.top(&mut out, h.symbol, &t),
            Record::Diff(d) => enc.diff(&mut out, h.symbol, DiffHead {
                first_id: d.first_id, last_id: d.last_id, prev_id: d.prev_id,
                exch_time_us: d.exch_time_us, recv_ns: d.recv_ns, tick: d.tick,
            }, d.bids.iter().collect::<Vec<_>>().into_iter(), d.asks.iter().collect::<Vec<_>>().into_iter()).unwrap(),
            Record::Trade(t) => enc.trade(&mut out, h.symbol, &t),
            Record::Snapshot(s) => enc.snapshot(&mut out, h.symbol, SnapshotHead {
                update_id: s.update_id, recv_ns: s.recv_ns, tick: s.tick, depth: s.depth,
            }, s.bids.iter().collect::<Vec<_>>().into_iter(), s.asks.iter().collect::<Vec<_>>().into_iter()).unwrap(),
            Record::Status(s) => enc.status(&mut out, h.symbol, &s),
            Record::Symbol(s) => enc.symbol(&mut out, h.symbol, &s).unwrap(),
        }
        // The fresh encoder numbers it 1, as the generator's did.
        prop_assert_eq!(out, rec);
    }
}

mod tap {
    use super::super::tap::{KindSet, Tap, TapConfig};
    use super::*;
    use crate::binance::RawLevel;
    use crate::book::fixed::TickSize;
    use crate::book::ladder::Side;
    use crate::book::sync::{BookConfig, DiffOutcome, OrderBook};

    fn l(p: i64, q: i64) -> RawLevel {
        RawLevel { price: p * 1_000_000, qty: q }
    }

    fn replay_into(rep: &mut Replica, tap: &mut Tap) {
        let n = feed(rep, tap.pending()).len() as u64;
        assert_eq!(tap.pending_records(), n, "the tap counts what it holds");
        tap.clear();
        assert_eq!(tap.pending_records(), 0);
    }

    fn book_levels(b: &OrderBook, side: Side) -> Vec<(i64, i64)> {
        b.ladder().levels(side).into_iter().map(|l| (l.tick, l.qty)).collect()
    }

    /// The tap's records rebuild the book it saw, through a resync.
    #[test]
    fn a_tapped_book_is_rebuilt_by_a_replica_through_a_resync() {
        let mut book = OrderBook::new(BookConfig::default(), TickSize::new(1_000_000));
        let mut tap = Tap::new(TapConfig::default(), 1 << 16);
        let mut rep = Replica::new();
        tap.symbol(0, "BTCUSDT", book.tick(), Some(1_000), 2);
        // Buffered, then synced by a snapshot.
        assert_eq!(book.on_diff(9, 11, &[l(100, 3)], &[]), DiffOutcome::Buffered);
        book.on_snapshot(10, &[l(100, 5), l(99, 1)], &[l(101, 2), l(103, 1)]);
        tap.state(0, &book, 1, false, 0);
        assert!(book.is_synced());
        let mut prev = book.last_update_id();
        let mut diff = |book: &mut OrderBook, tap: &mut Tap, f: u64, t: u64, b: &[RawLevel], a: &[RawLevel]| {
            let out = book.on_diff(f, t, b, a);
            if out == DiffOutcome::Applied {
                tap.diff(0, book, f, prev, 5, 6, b, a);
                tap.top(0, book, 5, 6);
                prev = book.last_update_id();
            }
            tap.state(0, book, 6, matches!(out, DiffOutcome::Gap), 0);
            out
        };
        assert_eq!(diff(&mut book, &mut tap, 12, 12, &[l(99, 0)], &[l(102, 4)]), DiffOutcome::Applied);
        replay_into(&mut rep, &mut tap);
        assert_eq!(rep.update_id(), book.last_update_id());
        assert_eq!(rep.bids().collect::<Vec<_>>(), book_levels(&book, Side::Bid));
        assert_eq!(rep.asks().collect::<Vec<_>>(), book_levels(&book, Side::Ask));
        let top = rep.last_top().copied().unwrap();
        assert_eq!((top.bid, top.ask), (Some((100, 3)), Some((101, 2))));
        // A gap: status gap, the book waits; the replica drops its book.
        assert_eq!(diff(&mut book, &mut tap, 20, 21, &[l(98, 1)], &[]), DiffOutcome::Gap);
        replay_into(&mut rep, &mut tap);
        assert_eq!(rep.state(), ReplicaState::Waiting);
        // Synced again: status synced + snapshot, and the replica follows.
        book.on_snapshot(22, &[l(97, 7)], &[l(104, 1)]);
        tap.state(0, &book, 7, false, 0);
        replay_into(&mut rep, &mut tap);
        assert_eq!(rep.state(), ReplicaState::Synced { partial: false });
        assert_eq!(rep.update_id(), book.last_update_id());
        assert_eq!(rep.bids().collect::<Vec<_>>(), book_levels(&book, Side::Bid));
        assert_eq!(rep.counters().lost, 0);
    }

    #[test]
    fn a_cut_snapshot_carries_the_top_levels_and_says_so() {
        let mut book = OrderBook::new(BookConfig::default(), TickSize::new(1_000_000));
        book.on_diff(11, 11, &[], &[]);
        book.on_snapshot(10, &[l(100, 5), l(99, 1), l(98, 1)], &[l(101, 2), l(103, 1)]);
        let mut tap = Tap::new(TapConfig { snapshot_depth: 2, ..TapConfig::default() }, 1024);
        tap.snapshot(0, &book, 1);
        let (_, r) = decode(tap.pending()).unwrap();
        let Record::Snapshot(s) = r else { panic!() };
        assert_eq!(s.depth, 2);
        assert_eq!(s.bids.iter().collect::<Vec<_>>(), [(100, 5), (99, 1)]);
        assert_eq!(s.asks.iter().collect::<Vec<_>>(), [(101, 2), (103, 1)]);
    }

    #[test]
    fn kinds_not_asked_for_are_not_written_and_tops_only_on_change() {
        let mut book = OrderBook::new(BookConfig::default(), TickSize::new(1_000_000));
        book.on_diff(11, 11, &[], &[]);
        book.on_snapshot(10, &[l(100, 5)], &[l(101, 2)]);
        let mut tap = Tap::new(TapConfig { kinds: KindSet::NONE.with(Kind::Top), ..TapConfig::default() }, 1024);
        tap.symbol(0, "BTCUSDT", book.tick(), None, 2);
        tap.state(0, &book, 1, false, 0);
        tap.trade(0, book.tick(), 1, 1, 1, 100_000_000, 1, false, false);
        assert!(tap.pending().is_empty(), "no symbol, status, snapshot or trade");
        tap.top(0, &book, 1, 1);
        tap.top(0, &book, 1, 2);
        let (h, _) = decode(tap.pending()).unwrap();
        assert_eq!((h.kind, h.len as usize), (Kind::Top, tap.pending().len()), "one top: the second did not change");
    }

    #[test]
    fn a_trade_off_the_grid_is_written_in_units() {
        let mut tap = Tap::new(TapConfig::default(), 1024);
        let tick = TickSize::new(1_000_000);
        tap.trade(0, tick, 7, 1, 2, 123, 5, true, false);
        let Record::Trade(t) = decode(tap.pending()).unwrap().1 else { panic!() };
        assert_eq!((t.tick, t.price, t.buyer_maker), (1, 123, true));
        tap.clear();
        tap.trade(0, tick, 8, 1, 2, 200_000_000, 5, false, true);
        let Record::Trade(t) = decode(tap.pending()).unwrap().1 else { panic!() };
        assert_eq!((t.tick, t.price, t.aggregate), (1_000_000, 200, true));
    }
}
