//! Two opens of the same workspace's index at once (a client that sends the root twice, a
//! configuration change while the first open runs, two editors on one workspace) both succeed
//! and share one index: seen from Neovim 0.7.2 as "Table 'symbols' already exists".

use codeforge_index::{OpenOutcome, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_new_index_both_succeed() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        let cache = dir.path().join("cache");
        let (a, b) = tokio::join!(
            tokio::spawn({
                let (c, r) = (cache.clone(), root.clone());
                async move { Store::open(&c, &r, None).await.map(|(_, o)| o) }
            }),
            tokio::spawn({
                let (c, r) = (cache.clone(), root.clone());
                async move { Store::open(&c, &r, None).await.map(|(_, o)| o) }
            }),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let a = a.unwrap_or_else(|e| panic!("round {round}: first open: {e:#}"));
        let b = b.unwrap_or_else(|e| panic!("round {round}: second open: {e:#}"));
        // One created it, the other found it.
        let created = [&a, &b]
            .iter()
            .filter(|o| matches!(o, OpenOutcome::Created))
            .count();
        assert_eq!(created, 1, "round {round}: {a:?} {b:?}");
    }
}
