using Akka.Actor;
using Akka.Serialization;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster;

/// <summary>Akka's side of <see cref="ClusterWire"/>: ChunkSeg's messages under their string manifests.</summary>
public sealed class WireSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 7311;

    public override int Identifier => Id;

    public override string Manifest(object o) => ClusterWire.ManifestOf(o);

    public override byte[] ToBinary(object obj) => ClusterWire.Encode(obj);

    public override object FromBinary(byte[] bytes, string manifest) => ClusterWire.Decode(bytes, manifest);
}
