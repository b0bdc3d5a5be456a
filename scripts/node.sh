#!/bin/sh
# node with the memory settings the service runs with in production, then node's arguments:
#   sh dist/scripts/node.sh dist/src/main.js        (npm run start:prod; the bench starts the service so too)
# Each setting is a default: a value set in the environment wins. What each one saves and costs is measured in
# docs/performance.md ("What stands in the way of each target", RSS).
#
# glibc's malloc reads these when the process starts, so node cannot set them for itself: at most two arenas (glibc
# gives each thread that allocates concurrently its own, up to eight per core, and keeps their freed blocks), and
# blocks of 128 KiB or more (request bodies, a batch's statement text) mapped on their own and returned when freed,
# where glibc's rising threshold would keep them in an arena. Other C libraries ignore them.
: "${MALLOC_ARENA_MAX:=2}"
: "${MALLOC_MMAP_THRESHOLD_:=131072}"
export MALLOC_ARENA_MAX MALLOC_MMAP_THRESHOLD_
# V8's young generation: semi-spaces of at most 8 MiB, where V8's 64-bit ceiling is 16; the young generation is then
# 16 MiB at most instead of 32. An --max-semi-space-size of the environment's NODE_OPTIONS comes later and wins.
NODE_OPTIONS="--max-semi-space-size=8${NODE_OPTIONS:+ $NODE_OPTIONS}"
export NODE_OPTIONS
exec "${NODE:-node}" "$@"
