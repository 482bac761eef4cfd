//! Container isolation: namespaces, mounts, pivot_root, /dev, users,
//! capabilities, rlimits and the exec of the container's PID 1.
