namespace ChunkSeg.Pipeline.Tests;
