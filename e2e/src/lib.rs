//! The end-to-end harness: a whole leadstream installation made of separate OS processes.
