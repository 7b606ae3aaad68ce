using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Mirage.Tests.TorchScalars;

/// <summary>
/// Every method call in an assembly's compiled code, as "Namespace.Type::Method(ParameterTypes)"
/// pairs (caller, callee), read from its IL with System.Reflection.Metadata.
/// </summary>
public static class IlCallSites
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    public static List<(string Caller, string Callee)> Read(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var metadata = pe.GetMetadataReader();
        var names = new MethodNames(metadata);
        var calls = new List<(string, string)>();
        foreach (var handle in metadata.MethodDefinitions)
        {
            var method = metadata.GetMethodDefinition(handle);
            if (method.RelativeVirtualAddress == 0)
                continue;
            var caller = names.Of(handle);
            var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!;
            for (int i = 0; i < il.Length;)
            {
                bool twoBytes = il[i] == 0xFE;
                var op = OpCodesByValue[twoBytes ? (short)(0xFE00 | il[i + 1]) : il[i]];
                i += twoBytes ? 2 : 1;
                if (op.OperandType == OperandType.InlineMethod)
                    calls.Add((caller, names.Of(MetadataTokens.EntityHandle(BitConverter.ToInt32(il, i)))));
                i += op.OperandType switch
                {
                    OperandType.InlineNone => 0,
                    OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                    OperandType.InlineVar => 2,
                    OperandType.InlineI8 or OperandType.InlineR => 8,
                    OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                    _ => 4,
                };
            }
        }
        return calls;
    }

    // Names that match across assemblies: type references and definitions spelled the same way.
    private sealed class MethodNames(MetadataReader metadata) : ISignatureTypeProvider<string, object?>
    {
        public string Of(EntityHandle handle) => handle.Kind switch
        {
            HandleKind.MethodDefinition => Of(metadata.GetMethodDefinition((MethodDefinitionHandle)handle)),
            HandleKind.MemberReference => Of(metadata.GetMemberReference((MemberReferenceHandle)handle)),
            HandleKind.MethodSpecification => Of(metadata.GetMethodSpecification((MethodSpecificationHandle)handle).Method),
            _ => "?",
        };

        private string Of(MethodDefinition method) =>
            $"{GetTypeFromDefinition(metadata, method.GetDeclaringType(), 0)}::{metadata.GetString(method.Name)}{Parameters(method.Signature)}";

        private string Of(MemberReference member)
        {
            string type = member.Parent.Kind switch
            {
                HandleKind.TypeReference => GetTypeFromReference(metadata, (TypeReferenceHandle)member.Parent, 0),
                HandleKind.TypeDefinition => GetTypeFromDefinition(metadata, (TypeDefinitionHandle)member.Parent, 0),
                _ => "?",
            };
            return $"{type}::{metadata.GetString(member.Name)}{Parameters(member.Signature)}";
        }

        private string Parameters(BlobHandle signature)
        {
            var reader = metadata.GetBlobReader(signature);
            if (reader.ReadSignatureHeader().Kind != SignatureKind.Method)
                return "";
            reader.Reset();
            return $"({string.Join(",", new SignatureDecoder<string, object?>(this, metadata, null).DecodeMethodSignature(ref reader).ParameterTypes)})";
        }

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            var type = reader.GetTypeDefinition(handle);
            var outer = type.GetDeclaringType();
            return (outer.IsNil ? reader.GetString(type.Namespace) + "." : GetTypeFromDefinition(reader, outer, 0) + "+") + reader.GetString(type.Name);
        }

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
        {
            var type = reader.GetTypeReference(handle);
            return (type.ResolutionScope.Kind == HandleKind.TypeReference
                ? GetTypeFromReference(reader, (TypeReferenceHandle)type.ResolutionScope, 0) + "+"
                : reader.GetString(type.Namespace) + ".") + reader.GetString(type.Name);
        }

        public string GetTypeFromSpecification(MetadataReader reader, object? context, TypeSpecificationHandle handle, byte rawTypeKind) => "?";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPinnedType(string elementType) => elementType;
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";
        public string GetGenericMethodParameter(object? context, int index) => "!!" + index;
        public string GetGenericTypeParameter(object? context, int index) => "!" + index;
    }
}
