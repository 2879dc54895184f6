//! The paths a layer created, for whiteouts and opaque markers, which only
//! hide what lower layers hold. A layer may have a million entries with
//! paths of up to 4 KiB, so the set keeps a 128-bit keyed hash of each path
//! rather than the path: 16 bytes an entry. The keys are random per apply,
//! so a layer cannot be crafted to collide.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

pub(super) struct Created {
    keys: (RandomState, RandomState),
    set: HashSet<u128>,
}

impl Created {
    pub(super) fn new() -> Self {
        Created {
            keys: (RandomState::new(), RandomState::new()),
            set: HashSet::new(),
        }
    }

    fn key(&self, path: &[u8]) -> u128 {
        (u128::from(self.keys.0.hash_one(path)) << 64) | u128::from(self.keys.1.hash_one(path))
    }

    pub(super) fn insert(&mut self, path: &[u8]) {
        let key = self.key(path);
        self.set.insert(key);
    }

    pub(super) fn contains(&self, path: &[u8]) -> bool {
        self.set.contains(&self.key(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_paths_apart() {
        let mut c = Created::new();
        c.insert(b"a/b");
        assert!(c.contains(b"a/b"));
        assert!(!c.contains(b"a/c"));
        assert!(!c.contains(b"a"));
    }
}
