//! lookoutd as a library: the API server, the engine and their configuration.
