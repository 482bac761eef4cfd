//! lookout: the command-line client.

fn main() {}
