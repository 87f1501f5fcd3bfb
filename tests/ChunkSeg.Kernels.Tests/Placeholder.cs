namespace ChunkSeg.Kernels.Tests;
