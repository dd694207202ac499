# For tools that expect node-gyp. It delegates to CMake (CMakeLists.txt holds every source and
# flag) and copies the result to where node-gyp puts its products.
{
  "targets": [
    {
      "target_name": "sparse_mixer",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["<(PRODUCT_DIR)/sparse_mixer.node"],
          "action": ["node", "scripts/build-native.js", "--work-dir", "build/cmake", "--copy-to", "<(PRODUCT_DIR)"]
        }
      ]
    }
  ]
}
