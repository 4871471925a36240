// glibc's malloc locks an arena when one thread frees what another allocated: a thousand
// calls moving between tokio's workers and handing buffers to the recording thread spent
// their time waiting on those locks, and frames went late (`cargo bench --bench paced`).
// mimalloc frees into the owning thread's heap without a lock (so did jemalloc, which took
// a minute of a first build to compile; mimalloc is one C file and measured as good).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    voicesim::cli::main()
}
