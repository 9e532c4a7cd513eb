#[test]
fn probe() {
    let t = std::time::Instant::now();
    let w = ferry_testworld::standard::standard_world();
    println!("generate {:?}", t.elapsed());
    let c = &w.content;
    let bytes: usize = c.blobs.values().map(Vec::len).sum();
    println!(
        "blobs {} bytes {} manifests {} placements {} graphs {}",
        c.blobs.len(),
        bytes,
        c.manifests.len(),
        c.placements.len(),
        w.graphs.len()
    );
    let mut repos = std::collections::BTreeSet::new();
    for p in &c.placements {
        repos.insert(format!("{}/{}", p.host, p.repository));
    }
    for r in &repos {
        println!("{r}");
    }
    let t = std::time::Instant::now();
    let d = tempfile::tempdir().unwrap();
    ferry_testworld::storage::publish(c, d.path()).unwrap();
    println!("publish {:?}", t.elapsed());
    let lines = ferry_testworld::storage::reference_lines(c).unwrap();
    println!("lines {}", lines.len());
    for (k, g) in w.graphs.iter().take(1) {
        println!("{k:?} {}", &g[..g.len().min(600)]);
    }
}
