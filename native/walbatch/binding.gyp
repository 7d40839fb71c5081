{
  "targets": [
    {
      "target_name": "embrfs_walbatch",
      "sources": ["walbatch.c"],
      "include_dirs": [
        "<!(node -p \"require('path').join(require('path').dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3')\")"
      ],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,nodelete"],
      "libraries": ["-lpthread"]
    }
  ]
}
