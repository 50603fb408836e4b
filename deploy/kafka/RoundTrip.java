// A real client round trip against the local broker: create a topic, produce one record,
// consume it back. `start` runs it (java single-file launch) before declaring the broker ready.
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class RoundTrip {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = "capmon.readiness";
        String payload = UUID.randomUUID().toString();
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        common.put("request.timeout.ms", "5000");
        common.put("default.api.timeout.ms", "10000");
        try (Admin admin = Admin.create(common)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }
        Properties p = new Properties();
        p.putAll(common);
        p.put("acks", "all");
        try (KafkaProducer<String, String> producer =
                 new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.send(new ProducerRecord<>(topic, "ready", payload)).get();
        }
        Properties c = new Properties();
        c.putAll(common);
        c.put("group.id", "capmon-readiness-" + payload);
        c.put("auto.offset.reset", "earliest");
        try (KafkaConsumer<String, String> consumer =
                 new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20000;
            while (System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                for (var r : records) {
                    if (payload.equals(r.value())) {
                        System.out.println("round trip ok");
                        return;
                    }
                }
            }
        }
        System.err.println("round trip: record not consumed back in time");
        System.exit(1);
    }
}
