#![allow(clippy::unwrap_used, reason = "tests fail loudly on any error")]
//! Address and subnet allocation in sled: unique under concurrency,
//! durable across reopening. No links are made here.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use berth_network::{EndpointSpec, NetworkError, NetworkStore};

const THREADS: usize = 8;
const PER_THREAD: usize = 20;

#[test]
fn addresses_are_unique_under_concurrency_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<(String, Ipv4Addr)> = {
        let state = berth_state::State::open(dir.path()).unwrap();
        let store = NetworkStore::open(&state, common::config(10, false)).unwrap();
        store.create("busy", None).unwrap();
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let id = format!("c{t:02}{i:03}");
                            let (_, ep) = store
                                .reserve("busy", &id, &EndpointSpec::default())
                                .unwrap();
                            (id, ep.ip)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    };
    let unique: HashSet<Ipv4Addr> = all.iter().map(|(_, ip)| *ip).collect();
    assert_eq!(
        unique.len(),
        THREADS * PER_THREAD,
        "an address was handed out twice"
    );

    // Reopen: every reservation is still there, with the same address.
    let state = berth_state::State::open(dir.path()).unwrap();
    let store = NetworkStore::open(&state, common::config(10, false)).unwrap();
    let net = store.get("busy").unwrap().unwrap();
    let mut stored: Vec<(String, Ipv4Addr)> = store
        .endpoints("busy")
        .unwrap()
        .into_iter()
        .map(|e| (e.container_id, e.ip))
        .collect();
    stored.sort();
    all.sort();
    assert_eq!(stored, all);
    assert!(
        all.iter()
            .all(|(_, ip)| net.subnet.contains(*ip) && *ip != net.gateway)
    );

    // A released address is the next one handed out.
    let (_, freed) = all[37].clone();
    store.release("busy", &all[37].0).unwrap();
    let (_, ep) = store
        .reserve("busy", "newcomer", &EndpointSpec::default())
        .unwrap();
    assert_eq!(ep.ip, freed);
}

#[test]
fn a_full_subnet_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = berth_state::State::open(dir.path()).unwrap();
    let store = NetworkStore::open(&state, common::config(11, false)).unwrap();
    store
        .create("tiny", Some("10.213.191.248/29".parse().unwrap()))
        .unwrap();
    // /29: 8 addresses minus network, gateway and broadcast.
    for i in 0..5 {
        store
            .reserve("tiny", &format!("t{i}"), &EndpointSpec::default())
            .unwrap();
    }
    assert!(matches!(
        store.reserve("tiny", "t5", &EndpointSpec::default()),
        Err(NetworkError::PoolExhausted { .. })
    ));
}

#[test]
fn user_networks_get_distinct_subnets_from_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let state = berth_state::State::open(dir.path()).unwrap();
    let config = common::config(12, false);
    let store = NetworkStore::open(&state, config.clone()).unwrap();
    let default = store.get("bridge").unwrap().unwrap();
    assert_eq!(default.subnet, config.default_subnet);
    assert_eq!(default.bridge_name, config.default_bridge);
    assert!(!default.user_defined);

    let a = store.create("a", None).unwrap();
    let b = store.create("b", None).unwrap();
    assert!(!a.subnet.overlaps(&b.subnet) && !a.subnet.overlaps(&default.subnet));
    assert!(config.pool.contains(a.subnet.network()) && config.pool.contains(b.subnet.network()));
    assert!(a.bridge_name.len() <= 15 && a.bridge_name.starts_with("bt12-"));
    assert_ne!(a.bridge_name, b.bridge_name);

    assert!(matches!(
        store.create("a", None),
        Err(NetworkError::Exists(_))
    ));
    assert!(matches!(
        store.create("no/slash", None),
        Err(NetworkError::InvalidName(_))
    ));
    assert!(matches!(
        store.create("none", None),
        Err(NetworkError::Predefined(_))
    ));
    assert!(store.create("clash", Some(a.subnet)).is_err());

    let names: Vec<String> = store.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["a", "b", "bridge"]);

    // Removing a network returns its subnet to the pool.
    store.remove("a").unwrap();
    let c = store.create("c", None).unwrap();
    assert_eq!(c.subnet, a.subnet);
    assert!(matches!(store.remove("a"), Err(NetworkError::NotFound(_))));
}
