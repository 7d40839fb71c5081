{
  "targets": [
    {
      "target_name": "embrfs_native",
      "sources": ["fingerprint.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,nodelete"]
    }
  ]
}
