using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Hdf5.Native;

/// <summary>
/// The whole of ChunkSeg's binding to the reference HDF5 C library (1.10 ABI: <c>hid_t</c> is 64-bit,
/// <c>hsize_t</c> unsigned 64-bit, <c>herr_t</c>/<c>htri_t</c> int). Nothing else calls libhdf5.
/// <para>
/// The serial library is not thread-safe: every call, including reading the error stack, must hold
/// <see cref="Gate"/>. The entry points here are raw; <see cref="Check(long, string)"/> and friends turn a
/// negative return into an <see cref="H5Exception"/> carrying HDF5's own description from the error stack.
/// </para>
/// </summary>
internal static unsafe partial class H5
{
    private const string Lib = NativeLibraries.Hdf5;

    /// <summary>The one lock around all of libhdf5.</summary>
    public static readonly Lock Gate = new();

    public const long Default = 0;          // H5P_DEFAULT, H5E_DEFAULT, H5S_ALL
    public const uint AccRdOnly = 0, AccRdWr = 1, AccTrunc = 2, AccExcl = 4;
    public const int ScopeLocal = 0;

    // H5T_class_t
    public const int ClassInteger = 0, ClassFloat = 1, ClassString = 3, ClassCompound = 6, ClassEnum = 8;
    public static readonly string[] ClassNames = ["integer", "float", "time", "string", "bitfield", "opaque", "compound", "reference", "enum", "variable-length", "array"];
    public const int SignNone = 0;
    public const int OrderBigEndian = 1;
    public const int CsetUtf8 = 1;
    public static readonly nuint Variable = nuint.MaxValue;   // H5T_VARIABLE

    // H5D_layout_t
    public const int LayoutCompact = 0, LayoutContiguous = 1, LayoutChunked = 2, LayoutVirtual = 3;

    // H5Z_filter_t
    public const int FilterDeflate = 1, FilterShuffle = 2, FilterFletcher32 = 3, FilterSzip = 4, FilterNbit = 5, FilterScaleOffset = 6;
    public const int FilterLzf = 32000, FilterBlosc = 32001, FilterBzip2 = 307, FilterLz4 = 32004, FilterZstd = 32015, FilterBitshuffle = 32008;

    public const int IdGroup = 2, IdDataset = 5;   // H5I_GROUP, H5I_DATASET
    public const int StrSpacePad = 2;               // H5T_STR_SPACEPAD
    public const int ScalarSpace = 0; // H5S_SCALAR

    static H5()
    {
        NativeLibraries.Register();
        IntPtr lib = NativeLibraries.Load(Lib);
        if (H5open() < 0) throw new H5Exception("H5open failed");
        H5Eset_auto2(Default, IntPtr.Zero, IntPtr.Zero);   // we report errors ourselves

        long Global(string name) => Marshal.ReadInt64(NativeLibrary.GetExport(lib, name));
        NativeUInt8 = Global("H5T_NATIVE_UINT8_g");
        NativeUInt16 = Global("H5T_NATIVE_UINT16_g");
        NativeUInt32 = Global("H5T_NATIVE_UINT32_g");
        NativeUInt64 = Global("H5T_NATIVE_UINT64_g");
        NativeInt8 = Global("H5T_NATIVE_INT8_g");
        NativeInt16 = Global("H5T_NATIVE_INT16_g");
        NativeInt32 = Global("H5T_NATIVE_INT32_g");
        NativeInt64 = Global("H5T_NATIVE_INT64_g");
        NativeFloat = Global("H5T_NATIVE_FLOAT_g");
        NativeDouble = Global("H5T_NATIVE_DOUBLE_g");
        StdU8Le = Global("H5T_STD_U8LE_g");
        StdU16Le = Global("H5T_STD_U16LE_g");
        StdU32Le = Global("H5T_STD_U32LE_g");
        StdU64Le = Global("H5T_STD_U64LE_g");
        StdI8Le = Global("H5T_STD_I8LE_g");
        StdI16Le = Global("H5T_STD_I16LE_g");
        StdI32Le = Global("H5T_STD_I32LE_g");
        StdI64Le = Global("H5T_STD_I64LE_g");
        IeeeF32Le = Global("H5T_IEEE_F32LE_g");
        IeeeF64Le = Global("H5T_IEEE_F64LE_g");
        CS1 = Global("H5T_C_S1_g");
        ClassDatasetCreate = Global("H5P_CLS_DATASET_CREATE_ID_g");
        ClassDatasetAccess = Global("H5P_CLS_DATASET_ACCESS_ID_g");
        ClassFileAccess = Global("H5P_CLS_FILE_ACCESS_ID_g");
        ClassLinkCreate = Global("H5P_CLS_LINK_CREATE_ID_g");
    }

    /// <summary>Forces the static constructor (library load, H5open, globals). Throws a clear error when libhdf5 is missing.</summary>
    public static void EnsureInitialized() => RuntimeHelpers.RunClassConstructor(typeof(H5).TypeHandle);

    public static readonly long NativeUInt8, NativeUInt16, NativeUInt32, NativeUInt64;
    public static readonly long NativeInt8, NativeInt16, NativeInt32, NativeInt64, NativeFloat, NativeDouble;
    public static readonly long StdU8Le, StdU16Le, StdU32Le, StdU64Le, StdI8Le, StdI16Le, StdI32Le, StdI64Le, IeeeF32Le, IeeeF64Le;
    public static readonly long CS1;
    public static readonly long ClassDatasetCreate, ClassDatasetAccess, ClassFileAccess, ClassLinkCreate;

    // ---- errors ---------------------------------------------------------------------------------------

    /// <summary>Throws with the error stack's description when <paramref name="id"/> is negative; returns it otherwise.</summary>
    public static long Check(long id, string call)
    {
        if (id < 0) throw new H5Exception($"{call} failed: {TakeErrorStack()}");
        return id;
    }

    public static int Check(int status, string call)
    {
        if (status < 0) throw new H5Exception($"{call} failed: {TakeErrorStack()}");
        return status;
    }

    /// <summary>Reads and clears the default error stack: the distinct descriptions, outermost first.</summary>
    public static string TakeErrorStack()
    {
        var messages = new List<string>();
        var handle = GCHandle.Alloc(messages);
        try
        {
            H5Ewalk2(Default, 1 /* H5E_WALK_DOWNWARD */, &CollectError, GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        H5Eclear2(Default);
        return messages.Count == 0 ? "no details from HDF5" : string.Join("; ", messages.Distinct());
    }

    [UnmanagedCallersOnly]
    private static int CollectError(uint n, ErrorDescription* error, IntPtr clientData)
    {
        var messages = (List<string>)GCHandle.FromIntPtr(clientData).Target!;
        string? desc = Marshal.PtrToStringUTF8(error->Desc);
        if (!string.IsNullOrWhiteSpace(desc)) messages.Add(desc.Trim());
        return 0;
    }

    /// <summary>H5E_error2_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ErrorDescription
    {
        public long ClassId, MajorId, MinorId;
        public uint Line;
        public IntPtr FunctionName, FileName, Desc;
    }

    // ---- library, errors ------------------------------------------------------------------------------
    [LibraryImport(Lib)] private static partial int H5open();
    [LibraryImport(Lib)] public static partial int H5Eset_auto2(long estack, IntPtr func, IntPtr clientData);
    [LibraryImport(Lib)] private static partial int H5Ewalk2(long estack, int direction, delegate* unmanaged<uint, ErrorDescription*, IntPtr, int> func, IntPtr clientData);
    [LibraryImport(Lib)] public static partial int H5Eclear2(long estack);
    [LibraryImport(Lib)] public static partial int H5free_memory(IntPtr buf);

    // ---- files ----------------------------------------------------------------------------------------
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Fopen(string name, uint flags, long fapl);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Fcreate(string name, uint flags, long fcpl, long fapl);
    [LibraryImport(Lib)] public static partial int H5Fflush(long obj, int scope);
    [LibraryImport(Lib)] public static partial int H5Fclose(long file);

    // ---- links, objects -------------------------------------------------------------------------------
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial int H5Lexists(long loc, string name, long lapl);
    [LibraryImport(Lib)] public static partial int H5Literate(long group, int indexType, int order, ulong* idx, delegate* unmanaged<long, byte*, IntPtr, IntPtr, int> op, IntPtr opData);
    [LibraryImport(Lib)] public static partial int H5Lvisit(long group, int indexType, int order, delegate* unmanaged<long, byte*, IntPtr, IntPtr, int> op, IntPtr opData);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Oopen(long loc, string name, long lapl);
    [LibraryImport(Lib)] public static partial int H5Oclose(long obj);
    [LibraryImport(Lib)] public static partial int H5Iget_type(long id);

    // ---- datasets -------------------------------------------------------------------------------------
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Dopen2(long loc, string name, long dapl);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Dcreate2(long loc, string name, long type, long space, long lcpl, long dcpl, long dapl);
    [LibraryImport(Lib)] public static partial int H5Dclose(long dataset);
    [LibraryImport(Lib)] public static partial long H5Dget_type(long dataset);
    [LibraryImport(Lib)] public static partial long H5Dget_space(long dataset);
    [LibraryImport(Lib)] public static partial long H5Dget_create_plist(long dataset);
    [LibraryImport(Lib)] public static partial int H5Dread(long dataset, long memType, long memSpace, long fileSpace, long xfer, void* buf);
    [LibraryImport(Lib)] public static partial int H5Dwrite(long dataset, long memType, long memSpace, long fileSpace, long xfer, void* buf);
    [LibraryImport(Lib)] public static partial int H5Dvlen_reclaim(long type, long space, long plist, void* buf);

    // ---- dataspaces -----------------------------------------------------------------------------------
    [LibraryImport(Lib)] public static partial long H5Screate(int type);
    [LibraryImport(Lib)] public static partial long H5Screate_simple(int rank, ulong* dims, ulong* maxDims);
    [LibraryImport(Lib)] public static partial int H5Sget_simple_extent_ndims(long space);
    [LibraryImport(Lib)] public static partial int H5Sget_simple_extent_dims(long space, ulong* dims, ulong* maxDims);
    [LibraryImport(Lib)] public static partial long H5Sget_simple_extent_npoints(long space);
    [LibraryImport(Lib)] public static partial int H5Sselect_hyperslab(long space, int op, ulong* start, ulong* stride, ulong* count, ulong* block);
    [LibraryImport(Lib)] public static partial int H5Sclose(long space);

    // ---- datatypes ------------------------------------------------------------------------------------
    [LibraryImport(Lib)] public static partial int H5Tget_class(long type);
    [LibraryImport(Lib)] public static partial nuint H5Tget_size(long type);
    [LibraryImport(Lib)] public static partial int H5Tget_sign(long type);
    [LibraryImport(Lib)] public static partial int H5Tget_order(long type);
    [LibraryImport(Lib)] public static partial int H5Tis_variable_str(long type);
    [LibraryImport(Lib)] public static partial int H5Tget_cset(long type);
    [LibraryImport(Lib)] public static partial int H5Tget_strpad(long type);
    [LibraryImport(Lib)] public static partial long H5Tget_super(long type);
    [LibraryImport(Lib)] public static partial long H5Tcopy(long type);
    [LibraryImport(Lib)] public static partial int H5Tset_size(long type, nuint size);
    [LibraryImport(Lib)] public static partial int H5Tset_cset(long type, int cset);
    [LibraryImport(Lib)] public static partial int H5Tclose(long type);

    // ---- property lists -------------------------------------------------------------------------------
    [LibraryImport(Lib)] public static partial long H5Pcreate(long cls);
    [LibraryImport(Lib)] public static partial int H5Pclose(long plist);
    [LibraryImport(Lib)] public static partial int H5Pget_layout(long dcpl);
    [LibraryImport(Lib)] public static partial int H5Pget_chunk(long dcpl, int maxNdims, ulong* dims);
    [LibraryImport(Lib)] public static partial int H5Pset_chunk(long dcpl, int ndims, ulong* dims);
    [LibraryImport(Lib)] public static partial int H5Pset_deflate(long dcpl, uint level);
    [LibraryImport(Lib)] public static partial int H5Pget_nfilters(long dcpl);
    [LibraryImport(Lib)] public static partial int H5Pget_filter2(long dcpl, uint index, uint* flags, nuint* cdNelmts, uint* cdValues, nuint nameLength, byte* name, uint* filterConfig);
    [LibraryImport(Lib)] public static partial int H5Pset_fill_value(long dcpl, long type, void* value);
    [LibraryImport(Lib)] public static partial int H5Pget_fill_value(long dcpl, long type, void* value);
    [LibraryImport(Lib)] public static partial int H5Pset_create_intermediate_group(long lcpl, uint create);
    [LibraryImport(Lib)] public static partial int H5Pset_chunk_cache(long dapl, nuint slots, nuint bytes, double w0);
    [LibraryImport(Lib)] public static partial int H5Pset_file_locking(long fapl, int useFileLocking, int ignoreWhenDisabled);   // hbool_t args, 1.10.7+
    [LibraryImport(Lib)] public static partial int H5Zfilter_avail(int filter);

    // ---- attributes -----------------------------------------------------------------------------------
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial int H5Aexists(long obj, string name);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Aopen(long obj, string name, long aapl);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial long H5Acreate2(long loc, string name, long type, long space, long acpl, long aapl);
    [LibraryImport(Lib)] public static partial long H5Aget_type(long attr);
    [LibraryImport(Lib)] public static partial long H5Aget_space(long attr);
    [LibraryImport(Lib)] public static partial int H5Aread(long attr, long memType, void* buf);
    [LibraryImport(Lib)] public static partial int H5Awrite(long attr, long memType, void* buf);
    [LibraryImport(Lib)] public static partial int H5Aclose(long attr);
}

/// <summary>A failed libhdf5 call, with HDF5's description. <see cref="Hdf5Volume"/> wraps it with the file and dataset.</summary>
internal sealed class H5Exception(string message) : Exception(message);
