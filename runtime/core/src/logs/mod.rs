//! Log pipeline and reader.
