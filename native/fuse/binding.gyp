{
  "targets": [
    {
      "target_name": "embrfs_fuse",
      "sources": ["gen/fuse-native-patched.c"],
      "include_dirs": [
        "<!(node -e \"require('napi-macros')\")",
        "<!(node -e \"require('fuse-shared-library/include')\")"
      ],
      "defines": ["_FILE_OFFSET_BITS=64"],
      "libraries": ["-l:libfuse.so.2", "-lpthread"],
      "cflags": ["-O2", "-Wall", "-UNDEBUG", "-Wno-unused-function"]
    }
  ]
}
