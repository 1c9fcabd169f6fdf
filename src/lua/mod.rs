//! The sandboxed Lua runtime. (Being built: issue 5.)
