//! lookout images: content-addressed layers, safe import of rootfs tarballs, and overlayfs mounts for containers.
