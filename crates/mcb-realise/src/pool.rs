//! The threads sources are fetched on: two, so at most two requests reach one host at
//! once whatever the machine's size.

/// The pool fetches run on.
pub(crate) fn fetch_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("mcb-fetch-{i}"))
            .build()
            .expect("a thread pool of two starts")
    })
}
