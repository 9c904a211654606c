# The pure parts of runtime/: no sockets, no threads, no Asio. Included by runtime's own
# CMake files and by tests/fuzz (whose build configures only pure components).
#   airlock_runtime_core  the supervisor's router and its exec/file/host-op rules
#   airlock_api_core      the API's JSON-RPC codec, line framing, base64, method params
find_package(nlohmann_json REQUIRED)
find_package(OpenSSL REQUIRED)
if(NOT TARGET airlock_runtime_core)
  airlock_component(airlock_runtime_core
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/vm/router.cpp ${CMAKE_CURRENT_LIST_DIR}/vm/exec_service.cpp
            ${CMAKE_CURRENT_LIST_DIR}/vm/file_service.cpp ${CMAKE_CURRENT_LIST_DIR}/vm/host_ops.cpp
    LIBS airlock_protocol nlohmann_json::nlohmann_json)
endif()
if(NOT TARGET airlock_api_core)
  airlock_component(airlock_api_core
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/api/base64.cpp ${CMAKE_CURRENT_LIST_DIR}/api/jsonrpc.cpp
            ${CMAKE_CURRENT_LIST_DIR}/api/params.cpp ${CMAKE_CURRENT_LIST_DIR}/api/methods.cpp
            ${CMAKE_CURRENT_LIST_DIR}/api/api_error.cpp ${CMAKE_CURRENT_LIST_DIR}/api/line_splitter.cpp
    LIBS airlock_protocol nlohmann_json::nlohmann_json OpenSSL::Crypto)
endif()
