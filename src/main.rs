// glibc's malloc locks an arena when one thread frees what another allocated: a thousand
// calls moving between tokio's workers and handing buffers to the recording thread spent
// their time waiting on those locks, and frames went late (`cargo bench --bench paced`).
// jemalloc's per-thread caches take those frees without a lock.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    voicesim::cli::main()
}
