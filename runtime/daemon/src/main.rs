//! lookoutd: serves the Docker Engine API on a unix socket.

fn main() {}
