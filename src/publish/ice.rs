//! `--publish iceoryx2`: the records in zero-copy shared memory, one iceoryx2 publish-subscribe
//! service per venue (`tickfeed/<venue>/records`), for any number of processes on this host.
//!
//! Each frame's records go in one sample: loaned from the shared segment, filled, sent. There is
//! no syscall in that: iceoryx2 writes the sample's offset into each subscriber's queue in shared
//! memory. A subscriber that falls behind loses its oldest samples (safe overflow), which the
//! records' sequence numbers show, and never holds the publisher up. A subscriber that joins
//! is seen by the timer (the service's subscriber count) and is sent a snapshot of every
//! synced book, then the updates.

use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSubFactory;

use super::PublishCounters;

/// Samples a subscriber's queue holds before the oldest is overwritten.
pub const SUBSCRIBER_BUFFER: usize = 4096;
/// Subscribers one service takes.
pub const MAX_SUBSCRIBERS: usize = 16;
/// The first sample size reserved; larger batches (a snapshot of a deep book) grow the segment
/// by powers of two, up to the record bound.
pub const INITIAL_SAMPLE: usize = 64 * 1024;

/// The iceoryx2 service name of a venue's records.
pub fn service_name(venue: &str) -> String {
    format!("tickfeed/{venue}/records")
}

fn quiet() {
    // iceoryx2 warns on stderr that it found no config file; tickfeed has none to give it.
    set_log_level(LogLevel::Error);
}

type Service = PubSubFactory<ipc::Service, [u8], ()>;

/// A node and the service `name` as both ends configure it (the settings must agree for
/// `open_or_create` to succeed from either side); errors name `flag`.
fn open_service(name: &str, flag: &str) -> Result<(Node<ipc::Service>, Service), String> {
    quiet();
    let err = |what: &str, e: &dyn std::fmt::Debug| format!("{flag}: {what}: {e:?}");
    let node = NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| err("cannot create the iceoryx2 node", &e))?;
    let sname: ServiceName = name.try_into().map_err(|e| err("bad service name", &e))?;
    let service = node
        .service_builder(&sname)
        .publish_subscribe::<[u8]>()
        .payload_alignment(Alignment::new(8).expect("8 is a power of two"))
        .enable_safe_overflow(true)
        .subscriber_max_buffer_size(SUBSCRIBER_BUFFER)
        .history_size(0)
        .max_subscribers(MAX_SUBSCRIBERS)
        .max_publishers(2)
        .open_or_create()
        .map_err(|e| err(&format!("cannot open the service {name}"), &e))?;
    Ok((node, service))
}

/// The hot thread's end.
pub struct IcePublisher {
    _node: Node<ipc::Service>,
    service: Service,
    publisher: iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>,
    subscribers: usize,
    /// Counters.
    pub counters: PublishCounters,
}

impl IcePublisher {
    /// Opens (or creates) the service `name` and a publisher on it.
    pub fn open(name: &str) -> Result<IcePublisher, String> {
        let flag = "--publish iceoryx2";
        let (node, service) = open_service(name, flag)?;
        let err = |what: &str, e: &dyn std::fmt::Debug| format!("{flag}: {what}: {e:?}");
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(INITIAL_SAMPLE)
            .allocation_strategy(AllocationStrategy::PowerOfTwo)
            .backpressure_strategy(BackpressureStrategy::DiscardData)
            .create()
            .map_err(|e| err("cannot create the publisher", &e))?;
        Ok(IcePublisher { _node: node, service, publisher, subscribers: 0, counters: PublishCounters::default() })
    }

    /// One frame's records, in one sample.
    pub fn send(&mut self, records: &[u8]) {
        self.send_counted(records, super::count_records(records));
    }

    /// [`IcePublisher::send`] of `n` records already counted.
    pub fn send_counted(&mut self, records: &[u8], n: u64) {
        if records.is_empty() {
            return;
        }
        let sent = match self.publisher.loan_slice_uninit(records.len()) {
            Ok(s) => s.write_from_slice(records).send().is_ok(),
            Err(_) => false,
        };
        if sent {
            self.counters.records += n;
            self.counters.bytes += records.len() as u64;
        } else {
            self.counters.dropped += n;
            self.counters.errors += 1;
        }
    }

    /// True when more subscribers are connected than at the last call.
    pub fn wants_snapshots(&mut self) -> bool {
        let now = self.service.dynamic_config().number_of_subscribers();
        let joined = now > self.subscribers;
        self.subscribers = now;
        joined
    }

    /// Subscribers connected at the last [`IcePublisher::wants_snapshots`].
    pub fn subscribers(&self) -> usize {
        self.subscribers
    }
}

/// A subscriber's end (`tickfeed subscribe --from iceoryx2`).
pub struct IceSubscriber {
    _node: Node<ipc::Service>,
    subscriber: iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>,
}

impl IceSubscriber {
    /// Opens the service `name` (created by a publisher, or created here and waited on).
    pub fn open(name: &str) -> Result<IceSubscriber, String> {
        let flag = "--from iceoryx2";
        let (node, service) = open_service(name, flag)?;
        let err = |what: &str, e: &dyn std::fmt::Debug| format!("{flag}: {what}: {e:?}");
        let subscriber = service
            .subscriber_builder()
            .buffer_size(SUBSCRIBER_BUFFER)
            .create()
            .map_err(|e| err("cannot create the subscriber", &e))?;
        Ok(IceSubscriber { _node: node, subscriber })
    }

    /// Hands each sample received since the last call to `f`; the number of samples.
    pub fn poll(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, String> {
        let mut n = 0;
        loop {
            match self.subscriber.receive() {
                Ok(Some(s)) => {
                    f(s.payload());
                    n += 1;
                }
                Ok(None) => return Ok(n),
                Err(e) => return Err(format!("iceoryx2 receive: {e:?}")),
            }
        }
    }
}
