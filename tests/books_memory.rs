//! Memory follows the book: 1,000 synced books of realistic shapes (prices from 10^4 to ~6x10^6
//! ticks, 1,000-level snapshots one to three ticks apart, as Binance's liquid and illiquid spot
//! symbols look) held in one process, measured as resident memory (`/proc/self/statm`), against
//! the fixed sizing every book had before (1.6 MB each, 1.6 GB for 1,000, reserved).

use tickfeed::binance::RawLevel;
use tickfeed::book::fixed::TickSize;
use tickfeed::book::{BookConfig, LadderConfig, OrderBook, SnapshotOutcome};

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A book of `n` synced books shaped like real symbols, with the given sizing.
fn books(n: usize, cfg: BookConfig) -> Vec<OrderBook> {
    let tick = TickSize::new(10_000).unwrap(); // 0.0001
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    (0..n)
        .map(|i| {
            // Log-uniform price between 1e4 and ~6.3e6 ticks.
            let price = (10_000f64 * 10f64.powf(2.8 * i as f64 / n as f64)) as i64;
            let step = 1 + (next() % 3) as i64;
            let lvl = |t: i64| RawLevel { price: t * 10_000, qty: 100_000_000 };
            let bids: Vec<RawLevel> = (0..1000).map(|k| lvl(price - step * k)).collect();
            let asks: Vec<RawLevel> = (0..1000).map(|k| lvl(price + 1 + step * k)).collect();
            let mut b = OrderBook::new(cfg, Some(tick));
            b.on_diff(1, 1, &[], &[]);
            assert!(matches!(b.on_snapshot(1, &bids, &asks), SnapshotOutcome::Synced { .. }));
            b
        })
        .collect()
}

#[test]
fn a_thousand_books_sized_by_their_symbols_fit_in_a_fraction_of_the_fixed_sizing() {
    let Some(before) = rss_bytes() else {
        eprintln!("SKIP: no /proc/self/statm on this system");
        return;
    };
    let auto = books(1000, BookConfig::default());
    let mid = rss_bytes().unwrap();
    let fixed_cfg = BookConfig { ladder: Some(LadderConfig::default()), ..BookConfig::default() };
    let fixed = books(1000, fixed_cfg);
    let after = rss_bytes().unwrap();
    let held = |v: &[OrderBook]| v.iter().map(|b| b.ladder().memory_bytes()).sum::<usize>();
    let (auto_rss, fixed_rss) = (mid.saturating_sub(before), after.saturating_sub(mid));
    eprintln!(
        "1,000 books: sized by symbol {} MB reserved, {} MB resident; fixed sizing {} MB reserved, {} MB resident",
        held(&auto) / 1_000_000,
        auto_rss / 1_000_000,
        held(&fixed) / 1_000_000,
        fixed_rss / 1_000_000
    );
    assert!(held(&auto) * 4 < held(&fixed), "reserved: {} vs {} bytes", held(&auto), held(&fixed));
    // Resident memory is what the pages touched so far cost (an array the kernel has not handed out
    // yet costs nothing): less for the sized books, and bounded as their windows move.
    assert!(auto_rss <= fixed_rss, "resident: {auto_rss} vs {fixed_rss} bytes");
    assert!(auto.iter().chain(&fixed).all(OrderBook::is_synced));
}
