//! Apply a layer blob and report throughput:
//! `cargo run -p berth-layer --example apply_throughput -- BLOB MEDIA_TYPE TARGET`
//! TARGET must not exist; it is left in place for inspection.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, blob, media_type, target] = args.as_slice() else {
        return Err("usage: apply_throughput BLOB MEDIA_TYPE TARGET".into());
    };
    let size = std::fs::metadata(blob)?.len();
    let file = std::fs::File::open(blob)?;
    let start = Instant::now();
    let stats = berth_layer::apply_fresh(
        target.as_ref(),
        media_type,
        file,
        None,
        &berth_layer::ApplyOptions::default(),
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} entries, {:.1} MB compressed, {:.1} MB tar in {secs:.2} s: {:.1} MB/s compressed, {:.1} MB/s uncompressed; diffID {}",
        stats.entries,
        size as f64 / 1e6,
        stats.uncompressed_size as f64 / 1e6,
        size as f64 / 1e6 / secs,
        stats.uncompressed_size as f64 / 1e6 / secs,
        stats.diff_id
    );
    Ok(())
}
