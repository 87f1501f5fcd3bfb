using System.Runtime.InteropServices;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Codecs;

// All P/Invoke of the codecs. Only the *_ctx / stateless entry points are used: they keep no global state,
// so any number of threads may call them at once. Library names are logical; NativeLibraries resolves them.

internal static partial class BloscNative
{
    /// <summary>Blosc adds at most this many bytes to the input (BLOSC_MAX_OVERHEAD).</summary>
    public const int MaxOverhead = 16;

    [LibraryImport(NativeLibraries.Blosc, EntryPoint = "blosc_compress_ctx", StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int CompressCtx(int clevel, int doshuffle, nuint typesize, nuint nbytes, byte* src,
        byte* dest, nuint destsize, string compressor, nuint blocksize, int numinternalthreads);

    [LibraryImport(NativeLibraries.Blosc, EntryPoint = "blosc_decompress_ctx")]
    public static unsafe partial int DecompressCtx(byte* src, byte* dest, nuint destsize, int numinternalthreads);

    /// <summary>Checks the header against the buffer length and returns 0 with the decompressed size, or a negative value.</summary>
    [LibraryImport(NativeLibraries.Blosc, EntryPoint = "blosc_cbuffer_validate")]
    public static unsafe partial int CbufferValidate(byte* cbuffer, nuint cbytes, nuint* nbytes);
}

internal static partial class ZstdNative
{
    public const ulong ContentSizeUnknown = unchecked((ulong)-1);
    public const ulong ContentSizeError = unchecked((ulong)-2);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_compressBound")]
    public static partial nuint CompressBound(nuint srcSize);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_compress")]
    public static unsafe partial nuint Compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int compressionLevel);

    /// <summary>ZSTD_c_compressionLevel and ZSTD_c_checksumFlag of ZSTD_cParameter.</summary>
    public const int CompressionLevelParameter = 100, ChecksumFlagParameter = 201;

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_createCCtx")]
    public static partial IntPtr CreateCCtx();

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(IntPtr cctx);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_CCtx_setParameter")]
    public static partial nuint CCtxSetParameter(IntPtr cctx, int parameter, int value);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_compress2")]
    public static unsafe partial nuint Compress2(IntPtr cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_decompress")]
    public static unsafe partial nuint Decompress(byte* dst, nuint dstCapacity, byte* src, nuint compressedSize);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_getFrameContentSize")]
    public static unsafe partial ulong GetFrameContentSize(byte* src, nuint srcSize);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(NativeLibraries.Zstd, EntryPoint = "ZSTD_getErrorName")]
    private static partial IntPtr GetErrorNamePtr(nuint code);

    public static string ErrorName(nuint code) => Marshal.PtrToStringUTF8(GetErrorNamePtr(code)) ?? "unknown zstd error";
}
