//! Transactions over a [`JsonTree`], for crates whose metadata changes must
//! touch several keys atomically (the snapshotter's commit renames a record
//! and its parent's child count changes with every prepare and remove).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use crate::StateError;
use crate::json::{JsonTree, decode, encode};

/// Why a transaction body stopped: [`TxAbort::Abort`] with the caller's
/// error, or a storage condition that sled handles (retry on conflict).
#[derive(Debug)]
pub enum TxAbort<E> {
    /// The caller gave up; nothing the body wrote is kept.
    Abort(E),
    /// Internal: a conflict or storage failure, or a corrupt record.
    #[doc(hidden)]
    Internal(TxInternal),
}

/// Opaque; produced only by [`JsonTx`] operations.
#[doc(hidden)]
#[derive(Debug)]
pub struct TxInternal(Internal);

#[derive(Debug)]
enum Internal {
    Sled(UnabortableTransactionError),
    Corrupt(StateError),
}

impl<E> From<UnabortableTransactionError> for TxAbort<E> {
    fn from(e: UnabortableTransactionError) -> Self {
        TxAbort::Internal(TxInternal(Internal::Sled(e)))
    }
}

/// The view of a [`JsonTree`] inside a transaction.
pub struct JsonTx<'a> {
    tx: &'a TransactionalTree,
}

impl JsonTx<'_> {
    pub fn get<T: DeserializeOwned, E>(&self, key: &str) -> Result<Option<T>, TxAbort<E>> {
        match self.tx.get(key)? {
            None => Ok(None),
            Some(v) => decode(key.as_bytes(), &v)
                .map(Some)
                .map_err(|e| TxAbort::Internal(TxInternal(Internal::Corrupt(e)))),
        }
    }

    pub fn put<T: Serialize, E>(&self, key: &str, value: &T) -> Result<(), TxAbort<E>> {
        self.tx.insert(key, encode(value))?;
        Ok(())
    }

    /// Returns whether the key existed.
    pub fn remove<E>(&self, key: &str) -> Result<bool, TxAbort<E>> {
        Ok(self.tx.remove(key)?.is_some())
    }
}

impl JsonTree {
    /// Run `body` atomically and durably: either all its writes are kept
    /// (and flushed) or none. `body` may run more than once when another
    /// writer conflicts, so it must have no effects outside the tree.
    pub fn transaction<R, E: From<StateError>>(
        &self,
        body: impl Fn(&JsonTx<'_>) -> Result<R, TxAbort<E>>,
    ) -> Result<R, E> {
        enum Stop<E> {
            User(E),
            Corrupt(StateError),
        }
        let result = self.tree().transaction(|tx| match body(&JsonTx { tx }) {
            Ok(r) => Ok(r),
            Err(TxAbort::Abort(e)) => Err(ConflictableTransactionError::Abort(Stop::User(e))),
            Err(TxAbort::Internal(TxInternal(Internal::Corrupt(e)))) => {
                Err(ConflictableTransactionError::Abort(Stop::Corrupt(e)))
            }
            Err(TxAbort::Internal(TxInternal(Internal::Sled(e)))) => Err(e.into()),
        });
        match result {
            Ok(r) => {
                self.tree().flush().map_err(StateError::from)?;
                Ok(r)
            }
            Err(TransactionError::Abort(Stop::User(e))) => Err(e),
            Err(TransactionError::Abort(Stop::Corrupt(e))) => Err(e.into()),
            Err(TransactionError::Storage(e)) => Err(StateError::Db(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum MyErr {
        Taken,
        State,
    }
    impl From<StateError> for MyErr {
        fn from(_: StateError) -> Self {
            MyErr::State
        }
    }

    #[test]
    fn all_or_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let state = crate::State::open(dir.path())?;
        let tree = state.json_tree("txtest")?;
        tree.put("a", &1u32)?;
        let r: Result<(), MyErr> = tree.transaction(|tx| {
            tx.put("b", &2u32)?;
            if tx.get::<u32, _>("a")?.is_some() {
                return Err(TxAbort::Abort(MyErr::Taken));
            }
            Ok(())
        });
        assert!(matches!(r, Err(MyErr::Taken)));
        assert_eq!(tree.get::<u32>("b")?, None);
        let r: Result<(), MyErr> = tree.transaction(|tx| {
            tx.remove("a")?;
            tx.put("b", &2u32)
        });
        assert!(r.is_ok());
        assert_eq!(tree.get::<u32>("a")?, None);
        assert_eq!(tree.get::<u32>("b")?, Some(2));
        Ok(())
    }
}
