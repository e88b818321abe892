//! The README's library example is `examples/library.rs` (which `cargo test` compiles):
//! every line the README shows must be there, so the README cannot drift from code that
//! builds.

#[test]
fn the_readme_library_example_is_the_compiled_example() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/library.rs");
    let section = readme
        .split("## Using the library")
        .nth(1)
        .expect("a library section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust block");
    let normalize = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    let compiled: Vec<String> = example.lines().map(normalize).collect();
    let mut shown = 0;
    for line in block.lines().map(normalize).filter(|l| !l.is_empty()) {
        assert!(
            compiled.contains(&line),
            "README line not in examples/library.rs: {line}"
        );
        shown += 1;
    }
    assert!(shown >= 5, "the README block is missing or empty");
}
